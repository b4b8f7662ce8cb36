import { randomBytes } from "node:crypto";
import type { Endpoint, Provider, ProviderRequest, ProviderResponse } from "../types.js";

export const MOCK_MODEL_ID = "mock-gpt";
const FINGERPRINT = "tollgate-mock";
const GREETING = "Hello from Tollgate's built-in mock provider (no OPENAI_API_KEY is set). You said: ";

function json(status: number, value: unknown): ProviderResponse {
  const bytes = Buffer.from(JSON.stringify(value));
  return { status, contentType: "application/json", headers: {}, body: [bytes] };
}

/** Text of the last user message; content may be a string or an array of parts. */
export function lastUserText(messages: unknown): string {
  if (!Array.isArray(messages)) return "";
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as { role?: unknown; content?: unknown } | null;
    if (!m || m.role !== "user") continue;
    if (typeof m.content === "string") return m.content;
    if (Array.isArray(m.content)) {
      return m.content
        .map((p: { type?: unknown; text?: unknown } | null) =>
          p && p.type === "text" && typeof p.text === "string" ? p.text : "",
        )
        .join("");
    }
    return "";
  }
  return "";
}

/** Roughly four characters per token, like OpenAI's rule of thumb. */
function roughTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

function promptText(messages: unknown): string {
  if (!Array.isArray(messages)) return "";
  return messages
    .map((m: { content?: unknown } | null) =>
      typeof m?.content === "string" ? m.content : JSON.stringify(m?.content ?? ""),
    )
    .join("\n");
}

function* sse(events: unknown[]): Iterable<Uint8Array> {
  for (const e of events) yield Buffer.from(`data: ${JSON.stringify(e)}\n\n`);
  yield Buffer.from("data: [DONE]\n\n");
}

/**
 * Answers like OpenAI without any upstream, so a fresh checkout works end to
 * end before anyone has an API key.
 */
export function createMockProvider(): Provider {
  return {
    name: "mock",
    kind: "mock",
    endpoints: new Set<Endpoint>(["chat_completions"]),
    async call(req: ProviderRequest): Promise<ProviderResponse> {
      const { json: body } = req;
      if (!Array.isArray(body.messages) || body.messages.length === 0) {
        return json(400, {
          error: {
            message:
              'Missing required parameter: \'messages\'. Send at least one message, e.g. [{"role":"user","content":"Hi"}].',
            type: "invalid_request_error",
            param: "messages",
            code: "missing_required_parameter",
          },
        });
      }
      const model = String(body.model);
      const content = GREETING + lastUserText(body.messages);
      const id = `chatcmpl-mock-${randomBytes(12).toString("hex")}`;
      const created = Math.floor(Date.now() / 1000);
      const promptTokens = roughTokens(promptText(body.messages));
      const completionTokens = roughTokens(content);
      const usage = {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      };

      if (!req.stream) {
        return json(200, {
          id,
          object: "chat.completion",
          created,
          model,
          system_fingerprint: FINGERPRINT,
          choices: [
            { index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: "stop" },
          ],
          usage,
        });
      }

      const includeUsage = (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
      const base = { id, object: "chat.completion.chunk", created, model, system_fingerprint: FINGERPRINT };
      const extra = includeUsage ? { usage: null } : {};
      const events: unknown[] = [
        {
          ...base,
          choices: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }],
          ...extra,
        },
      ];
      // A few content pieces, split at word boundaries, like a real token stream.
      const pieces = content.match(/\S+\s*/g) ?? [content];
      const per = Math.ceil(pieces.length / 4);
      for (let i = 0; i < pieces.length; i += per) {
        events.push({
          ...base,
          choices: [
            { index: 0, delta: { content: pieces.slice(i, i + per).join("") }, logprobs: null, finish_reason: null },
          ],
          ...extra,
        });
      }
      events.push({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }], ...extra });
      if (includeUsage) events.push({ ...base, choices: [], usage });
      return { status: 200, contentType: "text/event-stream; charset=utf-8", headers: {}, body: sse(events) };
    },

    async listModels(): Promise<ProviderResponse> {
      return json(200, {
        object: "list",
        data: [{ id: MOCK_MODEL_ID, object: "model", created: 1_700_000_000, owned_by: "tollgate-mock" }],
      });
    },

    async close(): Promise<void> {},
  };
}
