import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request as the fake Anthropic API received it. */
export interface SeenAnthropicRequest {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  /** The raw body bytes, as text. */
  body: string;
}

/** Token counts the fake reports, so tests can check the request log. */
export const FAKE_ANTHROPIC_USAGE = {
  /** Non-streaming answers. */
  message: { input_tokens: 12, output_tokens: 6 },
  /** Streams: message_start's input tokens, message_delta's (final) output tokens. */
  stream: { input_tokens: 25, output_tokens: 15 },
} as const;

/** Prompt-cache counts of `claude-cached`: apart from input_tokens, which stays what the base rate bills. */
export const FAKE_ANTHROPIC_CACHE = { cache_read_input_tokens: 100, cache_creation_input_tokens: 20 } as const;

/** One of Anthropic's rate-limit headers, which clients may see. */
export const FAKE_ANTHROPIC_RATELIMIT = { "anthropic-ratelimit-requests-remaining": "49" } as const;

/** The model list the fake serves at GET /v1/models: one model not named claude-*, as Anthropic-format providers serve. */
export const FAKE_ANTHROPIC_MODELS = ["claude-sonnet-4-5", "claude-haiku-4-5", "kimi-k2-anthropic"];

/** Anthropic's error bodies, as api.anthropic.com sends them. */
export function anthropicError(
  type: string,
  message: string,
): { type: "error"; error: { type: string; message: string } } {
  return { type: "error", error: { type, message } };
}

const ERRORS: Record<
  string,
  { status: number; body: ReturnType<typeof anthropicError>; headers?: Record<string, string> }
> = {
  "claude-error-400": { status: 400, body: anthropicError("invalid_request_error", "max_tokens: Field required") },
  "claude-error-429": {
    status: 429,
    body: anthropicError("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    headers: { "retry-after": "7" },
  },
  "claude-error-500": { status: 500, body: anthropicError("api_error", "Internal server error") },
};

/**
 * A stand-in for api.anthropic.com speaking the Messages API wire format,
 * steered by the requested model:
 * - `claude-error-400|429|500`: that status with Anthropic's error body;
 * - `claude-slow`: never answers;
 * - `claude-held` (streaming): sends message_start, then waits for release();
 * - `claude-cached`: reports prompt-cache reads and writes (FAKE_ANTHROPIC_CACHE);
 * - anything else: a message, or its SSE stream when `stream: true`.
 * It answers 401 unless `x-api-key` is the expected upstream key.
 */
export class FakeAnthropic {
  readonly seen: SeenAnthropicRequest[] = [];
  /** Streams whose client (the gateway) went away before the end. */
  closedEarly = 0;
  url = "";
  private server: Server | undefined;
  private releaseHeld: (() => void) | undefined;

  constructor(private readonly apiKey: string) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Lets a held stream go on. */
  release(): void {
    this.releaseHeld?.();
    this.releaseHeld = undefined;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
    const body = JSON.stringify(value);
    res.writeHead(status, {
      ...headers,
      ...FAKE_ANTHROPIC_RATELIMIT,
      "content-type": "application/json",
      "request-id": "req_fake_anthropic_1",
    });
    res.end(body);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    this.seen.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body });

    const path = req.url?.split("?")[0];
    if (req.method === "POST" && path === "/v1/messages/count_tokens" && req.headers["x-api-key"] === this.apiKey) {
      this.json(res, 200, { input_tokens: 42 });
      return;
    }
    if (req.method === "GET" && req.url?.split("?")[0] === "/v1/models" && req.headers["x-api-key"] === this.apiKey) {
      const data = FAKE_ANTHROPIC_MODELS.map((id) => ({
        type: "model",
        id,
        display_name: id,
        created_at: "2025-09-29T00:00:00Z",
      }));
      this.json(res, 200, { data, has_more: false, first_id: data[0]!.id, last_id: data.at(-1)!.id });
      return;
    }
    if (req.method !== "POST" || path !== "/v1/messages") {
      this.json(res, 404, anthropicError("not_found_error", `Not found: ${req.method} ${req.url}`));
      return;
    }
    if (req.headers["x-api-key"] !== this.apiKey) {
      this.json(res, 401, anthropicError("authentication_error", "invalid x-api-key"));
      return;
    }
    if (typeof req.headers["anthropic-version"] !== "string") {
      this.json(res, 400, anthropicError("invalid_request_error", "anthropic-version: header is required"));
      return;
    }
    const parsed = JSON.parse(body) as { model: string; stream?: boolean; messages?: Array<{ content: unknown }> };
    const error = ERRORS[parsed.model];
    if (error) {
      this.json(res, error.status, error.body, error.headers);
      return;
    }
    if (parsed.model === "claude-slow") return; // never answers
    const id = "msg_fake01";
    const cache =
      parsed.model === "claude-cached"
        ? FAKE_ANTHROPIC_CACHE
        : { cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
    if (!parsed.stream) {
      this.json(res, 200, {
        id,
        type: "message",
        role: "assistant",
        model: parsed.model,
        content: [{ type: "text", text: "Hello from the fake Anthropic." }],
        stop_reason: "end_turn",
        stop_sequence: null,
        usage: { ...FAKE_ANTHROPIC_USAGE.message, ...cache },
      });
      return;
    }

    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "request-id": "req_fake_anthropic_2",
    });
    res.on("close", () => {
      if (!res.writableFinished) this.closedEarly++;
    });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    send("message_start", {
      type: "message_start",
      message: {
        id,
        type: "message",
        role: "assistant",
        model: parsed.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: FAKE_ANTHROPIC_USAGE.stream.input_tokens, output_tokens: 1, ...cache },
      },
    });
    if (parsed.model === "claude-held") await new Promise<void>((r) => (this.releaseHeld = r));
    if (res.destroyed) return;
    send("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
    send("ping", { type: "ping" });
    for (const text of ["Hello", " from the", " fake Anthropic."]) {
      send("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } });
    }
    send("content_block_stop", { type: "content_block_stop", index: 0 });
    // The usage line arrives split across two writes, as TCP may deliver it.
    const delta = `event: message_delta\ndata: ${JSON.stringify({
      type: "message_delta",
      delta: { stop_reason: "end_turn", stop_sequence: null },
      usage: { output_tokens: FAKE_ANTHROPIC_USAGE.stream.output_tokens },
    })}\n\n`;
    res.write(delta.slice(0, 40));
    res.write(delta.slice(40));
    send("message_stop", { type: "message_stop" });
    res.end();
  }
}
