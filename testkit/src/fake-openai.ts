import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { FakeResponses } from "./fake-openai-responses.js";
import { modelList, openAiErrorBody, SSE_DONE, sseData } from "./openai-wire.js";

export interface SeenOpenAiRequest {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

/** The model list the fake serves at GET /v1/models. */
export const FAKE_OPENAI_MODELS = ["gpt-4o-mini", "text-embedding-3-small", "claude-lookalike"];

/** Token counts of chat answers (streamed or not); `gpt-cached` adds cached prompt tokens. */
export const FAKE_OPENAI_USAGE = { prompt_tokens: 9, completion_tokens: 5, total_tokens: 14 } as const;
export const FAKE_OPENAI_CACHED_TOKENS = 6;

/**
 * Response headers as api.openai.com sends them: some a client may see, some
 * (its own rate limits, the account, a cookie) that must stay behind the gateway.
 */
export const FAKE_OPENAI_HEADERS = {
  "x-request-id": "req_fake_openai_1",
  "openai-processing-ms": "12",
  "openai-organization": "org-fake-upstream-account",
  "x-ratelimit-limit-requests": "10000",
  "x-ratelimit-remaining-requests": "9999",
  "set-cookie": "__cf_bm=fake-upstream-cookie; path=/",
} as const;

const openAiError = (message: string, type: string, code: string | null) => openAiErrorBody(message, type, code);

/**
 * A small stand-in for an OpenAI-format upstream, speaking its wire format at
 * the paths of each dialect:
 * - OpenAI `/v1/…` and Gemini's compatible `/v1beta/openai/…` (Bearer key);
 * - Azure `/openai/deployments/{deployment}/…?api-version=…` and `/openai/v1/…`
 *   (`api-key` header; 401 without it, 404 without api-version, as Azure answers);
 * chat completions (streamed too, with include_usage honoured), embeddings
 * (float or base64) and the model list. Steered by the model:
 * `gpt-cached` reports cached prompt tokens, `…stream-break` cuts its
 * stream after the first chunk; `failWith` makes every POST fail with that status.
 */
export class FakeOpenAi {
  readonly seen: SeenOpenAiRequest[] = [];
  /** The exact bytes of the last stream sent. */
  lastStream = "";
  /** When set, every POST answers this status with an OpenAI error body. */
  failWith: number | undefined;
  /** The Responses API (/v1/responses and its sub-resources). */
  readonly responses = new FakeResponses();
  url = "";
  private server: Server | undefined;

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { ...FAKE_OPENAI_HEADERS, ...headers, "content-type": "application/json" });
    res.end(JSON.stringify(value));
  }

  /** The operation a path names in any dialect, or undefined (404). */
  private operation(req: IncomingMessage, res: ServerResponse): string | undefined {
    const url = new URL(req.url ?? "/", "http://fake");
    const azure = /^\/openai\/(?:deployments\/[^/]+|v1)(\/.*)$/.exec(url.pathname);
    if (azure) {
      if (typeof req.headers["api-key"] !== "string") {
        this.json(res, 401, {
          error: { code: "401", message: "Access denied due to invalid subscription key or wrong API endpoint." },
        });
        return undefined;
      }
      if (url.pathname.startsWith("/openai/deployments/") && !url.searchParams.get("api-version")) {
        this.json(res, 404, { error: { code: "404", message: "Resource not found" } });
        return undefined;
      }
      return azure[1];
    }
    const plain = /^\/(?:v1|v1beta\/openai)(\/.*)$/.exec(url.pathname);
    if (plain && (url.search === "" || plain[1]!.startsWith("/responses"))) return plain[1];
    this.json(res, 404, openAiError(`Unknown path ${req.url}`, "invalid_request_error", "unknown_url"));
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    this.seen.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body });
    const op = this.operation(req, res);
    if (op === undefined) return;
    if (req.method === "GET" && op === "/models") {
      this.json(res, 200, modelList(FAKE_OPENAI_MODELS, { created: 1, ownedBy: "openai" }));
      return;
    }
    if (
      this.failWith === undefined &&
      this.responses.handle(req, res, op, body, (status, value) => this.json(res, status, value))
    )
      return;
    if (this.failWith !== undefined) {
      this.json(
        res,
        this.failWith,
        openAiError(
          "The fake upstream failed as told.",
          this.failWith >= 500 ? "server_error" : "invalid_request_error",
          null,
        ),
      );
      return;
    }
    const parsed = JSON.parse(body) as {
      model: string;
      input?: unknown;
      encoding_format?: string;
      stream?: boolean;
      stream_options?: { include_usage?: boolean };
    };
    if (op === "/embeddings") {
      const inputs = Array.isArray(parsed.input) ? parsed.input : [parsed.input];
      const vector = [0.25, -0.5, 1];
      const embedding =
        parsed.encoding_format === "base64" ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector;
      this.json(res, 200, {
        object: "list",
        data: inputs.map((_, index) => ({ object: "embedding", index, embedding })),
        model: parsed.model,
        usage: { prompt_tokens: 4, total_tokens: 4 },
      });
      return;
    }
    if (op === "/chat/completions") {
      const usage =
        parsed.model === "gpt-cached"
          ? {
              ...FAKE_OPENAI_USAGE,
              prompt_tokens_details: { cached_tokens: FAKE_OPENAI_CACHED_TOKENS, audio_tokens: 0 },
            }
          : FAKE_OPENAI_USAGE;
      if (parsed.stream) {
        this.stream(res, parsed.model, parsed.stream_options?.include_usage === true, usage);
        return;
      }
      this.json(res, 200, {
        id: "chatcmpl-fake",
        object: "chat.completion",
        created: 1,
        model: parsed.model,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: "Hello from the fake OpenAI." },
            finish_reason: "stop",
            logprobs: null,
          },
        ],
        usage,
      });
      return;
    }
    this.json(res, 404, openAiError(`Unknown path ${req.url}`, "invalid_request_error", "unknown_url"));
  }

  /** A chat stream as OpenAI sends it: with include_usage, every chunk has usage: null and a last one has only usage. */
  private stream(res: ServerResponse, model: string, includeUsage: boolean, usage: object): void {
    res.writeHead(200, { ...FAKE_OPENAI_HEADERS, "content-type": "text/event-stream; charset=utf-8" });
    this.lastStream = "";
    const write = (text: string) => {
      this.lastStream += text;
      res.write(text);
    };
    const base = {
      id: "chatcmpl-fake",
      object: "chat.completion.chunk",
      created: 1,
      model,
      system_fingerprint: "fp_fake",
    };
    const extra = includeUsage ? { usage: null } : {};
    const chunk = (choices: unknown[]) => sseData({ ...base, choices, ...extra });
    write(chunk([{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]));
    if (model.endsWith("stream-break")) {
      // Once the head and first chunk are out, the connection dies.
      setTimeout(() => res.destroy(), 50);
      return;
    }
    for (const content of ["Hello", " from the", " fake OpenAI."])
      write(chunk([{ index: 0, delta: { content }, logprobs: null, finish_reason: null }]));
    write(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]));
    if (includeUsage) {
      // Split across two writes, as TCP may deliver it.
      const last = sseData({ ...base, choices: [], usage });
      write(last.slice(0, 30));
      write(last.slice(30));
    }
    write(SSE_DONE);
    res.end();
  }
}
