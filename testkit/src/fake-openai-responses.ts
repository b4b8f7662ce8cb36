import type { IncomingMessage, ServerResponse } from "node:http";
import { openAiErrorBody } from "./openai-wire.js";

/** Token counts of every fake response. */
export const FAKE_RESPONSES_USAGE = { input_tokens: 9, output_tokens: 5, total_tokens: 14 } as const;

/** The model a stored prompt names (a create without `model`). */
export const FAKE_PROMPT_MODEL = "gpt-4o-mini";

interface Stored {
  response: Record<string, unknown>;
  input: unknown[];
}

/**
 * The Responses API as api.openai.com serves it, stored in memory: create
 * (streamed too; `background: true` stays queued until cancelled), retrieve
 * (and resume its stream), delete, cancel, input items, input token counts
 * and compaction. Answers `true` once it handled the operation.
 */
export class FakeResponses {
  readonly stored = new Map<string, Stored>();
  private next = 1;

  handle(
    req: IncomingMessage,
    res: ServerResponse,
    op: string,
    body: string,
    send: (status: number, value: unknown) => void,
  ): boolean {
    const url = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "GET";
    if (!op.startsWith("/responses")) return false;
    const notFound = (id: string) =>
      send(404, openAiErrorBody(`Response with id '${id}' not found.`, "invalid_request_error", null, null));
    if (method === "POST" && op === "/responses") {
      const parsed = JSON.parse(body) as {
        model?: string;
        prompt?: unknown;
        input?: unknown;
        metadata?: Record<string, string>;
        background?: boolean;
        stream?: boolean;
      };
      if (parsed.model === undefined && parsed.prompt === undefined) {
        send(
          400,
          openAiErrorBody(
            "Missing required parameter: 'model'.",
            "invalid_request_error",
            "missing_required_parameter",
            "model",
          ),
        );
        return true;
      }
      const id = `resp_fake${String(this.next++).padStart(4, "0")}`;
      const response = {
        id,
        object: "response",
        created_at: 1,
        status: parsed.background ? "queued" : "completed",
        background: parsed.background === true,
        model: parsed.model ?? FAKE_PROMPT_MODEL,
        output: parsed.background
          ? []
          : [
              {
                type: "message",
                id: `msg_${id}`,
                status: "completed",
                role: "assistant",
                content: [{ type: "output_text", text: "Hello from the fake OpenAI.", annotations: [] }],
              },
            ],
        metadata: parsed.metadata ?? {},
        usage: parsed.background
          ? null
          : {
              ...FAKE_RESPONSES_USAGE,
              input_tokens_details: { cached_tokens: 0 },
              output_tokens_details: { reasoning_tokens: 0 },
            },
      };
      const input =
        typeof parsed.input === "string"
          ? [{ type: "message", id: `in_${id}`, role: "user", content: [{ type: "input_text", text: parsed.input }] }]
          : [];
      this.stored.set(id, { response, input });
      if (parsed.stream) this.stream(res, response);
      else send(200, response);
      return true;
    }
    if (method === "POST" && op === "/responses/input_tokens") {
      send(200, { object: "response.input_tokens", input_tokens: 7 });
      return true;
    }
    if (method === "POST" && op === "/responses/compact") {
      send(200, {
        id: "resp_compact1",
        object: "response.compaction",
        created_at: 1,
        output: [],
        usage: { ...FAKE_RESPONSES_USAGE },
      });
      return true;
    }
    const m = /^\/responses\/([^/]+)(\/cancel|\/input_items)?$/.exec(op);
    if (!m) return false;
    const id = decodeURIComponent(m[1]!);
    const found = this.stored.get(id);
    if (!found) {
      notFound(id);
      return true;
    }
    if (method === "GET" && m[2] === undefined) {
      if (url.searchParams.get("stream") === "true") this.stream(res, found.response);
      else send(200, found.response);
    } else if (method === "DELETE" && m[2] === undefined) {
      this.stored.delete(id);
      send(200, { id, object: "response", deleted: true });
    } else if (method === "POST" && m[2] === "/cancel") {
      found.response.status = "cancelled";
      send(200, found.response);
    } else if (method === "GET" && m[2] === "/input_items") {
      send(200, {
        object: "list",
        data: found.input,
        first_id: (found.input[0] as { id?: string } | undefined)?.id ?? null,
        last_id: null,
        has_more: false,
      });
    } else {
      send(405, openAiErrorBody(`Method ${method} not allowed.`, "invalid_request_error"));
    }
    return true;
  }

  /** A background response finishes: its output and usage appear. */
  finish(id: string): void {
    const found = this.stored.get(id);
    if (!found) throw new Error(`no stored response ${id}`);
    Object.assign(found.response, {
      status: "completed",
      output: [
        {
          type: "message",
          id: `msg_${id}`,
          status: "completed",
          role: "assistant",
          content: [{ type: "output_text", text: "Hello from the fake OpenAI.", annotations: [] }],
        },
      ],
      usage: {
        ...FAKE_RESPONSES_USAGE,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens_details: { reasoning_tokens: 0 },
      },
    });
  }

  /** A response's event stream, as created (or resumed) with `stream: true`. */
  private stream(res: ServerResponse, response: Record<string, unknown>): void {
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" });
    let seq = 0;
    const send = (type: string, data: Record<string, unknown>) =>
      res.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`);
    const itemId = `msg_${String(response.id)}`;
    const text = "Hello from the fake OpenAI.";
    const part = { type: "output_text", text: "", annotations: [] };
    const item = { type: "message", id: itemId, status: "in_progress", role: "assistant", content: [] };
    send("response.created", { response: { ...response, status: "in_progress", output: [], usage: null } });
    send("response.output_item.added", { output_index: 0, item });
    send("response.content_part.added", { item_id: itemId, output_index: 0, content_index: 0, part });
    send("response.output_text.delta", {
      item_id: itemId,
      output_index: 0,
      content_index: 0,
      delta: text,
      logprobs: [],
    });
    send("response.output_text.done", { item_id: itemId, output_index: 0, content_index: 0, text, logprobs: [] });
    send("response.content_part.done", { item_id: itemId, output_index: 0, content_index: 0, part: { ...part, text } });
    send("response.output_item.done", {
      output_index: 0,
      item: { ...item, status: "completed", content: [{ ...part, text }] },
    });
    send("response.completed", { response });
    res.end();
  }
}
