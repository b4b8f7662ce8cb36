import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { modelList, openAiErrorBody, SSE_DONE, sseData } from "./openai-wire.js";
import { countPromptTokens, defaultReply, splitCompletion, type ChatRequest } from "./fake-openai-chat.js";

export * from "./fake-openai-chat.js";

/** One request as the fake upstream received it. */
export interface RecordedRequest {
  method: string;
  /** Path including the query string, e.g. `/v1/chat/completions`. */
  path: string;
  /** Node's lower-cased header map. */
  headers: IncomingHttpHeaders;
  /** Parsed JSON when the body is JSON, the raw string otherwise, undefined when empty. */
  body: unknown;
  /** The HTTP status the fake answered with (set once the answer is decided). */
  status?: number;
}

/** An error the fake answers with instead of a completion (see `failNext`). */
export interface FakeFailure {
  status: number;
  message?: string;
  type?: string;
  code?: string | null;
  headers?: Record<string, string>;
}

export interface FakeOpenAIOptions {
  /** When set, requests must carry `Authorization: Bearer <expectedApiKey>` or get a 401. */
  expectedApiKey?: string;
  /** Delay between streamed chunks, in ms (default 15). */
  chunkDelayMs?: number;
  /** Delay before any answer starts (headers included), in ms (default 0). */
  responseDelayMs?: number;
  /** Model ids listed by GET /v1/models (default gpt-4o-mini, gpt-4o, gpt-4.1-mini). */
  models?: string[];
  /** The assistant's answer for a request (default `echo: <last user message>`). */
  reply?: (request: ChatRequest) => string;
}

export interface FakeOpenAI {
  /** e.g. `http://127.0.0.1:41234/v1`: what an OpenAI client or OPENAI_BASE_URL wants. */
  baseUrl: string;
  /** e.g. `http://127.0.0.1:41234`. */
  origin: string;
  port: number;
  /** Every request received, in arrival order (including rejected ones). */
  requests: RecordedRequest[];
  /** Requests to POST /v1/chat/completions only. */
  chatRequests(): RecordedRequest[];
  /** Streams currently being written. */
  readonly activeStreams: number;
  /** Streams whose client went away before `[DONE]` was written. */
  readonly abortedStreams: number;
  /** Knobs, changeable at any time; they apply to the next request. */
  setExpectedApiKey(key: string | undefined): void;
  setChunkDelayMs(ms: number): void;
  setResponseDelayMs(ms: number): void;
  setReply(reply: ((request: ChatRequest) => string) | undefined): void;
  /** Answer the next chat/models request with this error (queue; each call adds one). */
  failNext(failure: FakeFailure): void;
  /** Clear recorded requests and counters (knobs stay). */
  reset(): void;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function completionId(): string {
  return `chatcmpl-${randomBytes(12).toString("base64url")}`;
}

const errorBody = openAiErrorBody;

/**
 * A plain node:http server on 127.0.0.1 (port 0) speaking OpenAI's wire format:
 * POST /v1/chat/completions (plain and SSE streaming) and GET /v1/models.
 */
export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  let expectedApiKey = options.expectedApiKey;
  let chunkDelayMs = options.chunkDelayMs ?? 15;
  let responseDelayMs = options.responseDelayMs ?? 0;
  let reply = options.reply ?? defaultReply;
  const models = options.models ?? ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"];
  const failures: FakeFailure[] = [];
  const requests: RecordedRequest[] = [];
  let activeStreams = 0;
  let abortedStreams = 0;
  const created = Math.floor(Date.now() / 1000);

  function send(
    res: ServerResponse,
    rec: RecordedRequest,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) {
    rec.status = status;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(text)),
      "x-request-id": `req_${randomBytes(8).toString("hex")}`,
      ...headers,
    });
    res.end(text);
  }

  function checkAuth(req: IncomingMessage, res: ServerResponse, rec: RecordedRequest): boolean {
    if (expectedApiKey === undefined) return true;
    const auth = req.headers.authorization;
    if (!auth) {
      send(
        res,
        rec,
        401,
        errorBody(
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
          "invalid_request_error",
          null,
        ),
      );
      return false;
    }
    const m = /^Bearer (.+)$/.exec(auth);
    if (!m || m[1] !== expectedApiKey) {
      const shown = m?.[1] ? `${m[1].slice(0, 3)}*****${m[1].slice(-4)}` : "";
      send(
        res,
        rec,
        401,
        errorBody(
          `Incorrect API key provided: ${shown}. You can find your API key at https://platform.openai.com/account/api-keys.`,
          "invalid_request_error",
          "invalid_api_key",
        ),
      );
      return false;
    }
    return true;
  }

  function takeFailure(res: ServerResponse, rec: RecordedRequest): boolean {
    const f = failures.shift();
    if (!f) return false;
    const type = f.type ?? (f.status === 429 ? "requests" : f.status >= 500 ? "server_error" : "invalid_request_error");
    send(res, rec, f.status, errorBody(f.message ?? `fake failure ${f.status}`, type, f.code ?? null), f.headers);
    return true;
  }

  async function chatCompletions(_req: IncomingMessage, res: ServerResponse, rec: RecordedRequest) {
    const body = rec.body;
    if (!body || typeof body !== "object" || Array.isArray(body)) {
      send(
        res,
        rec,
        400,
        errorBody(
          "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
          "invalid_request_error",
          null,
        ),
      );
      return;
    }
    const chat = body as ChatRequest;
    if (typeof chat.model !== "string" || chat.model === "") {
      send(res, rec, 400, errorBody("you must provide a model parameter", "invalid_request_error", null));
      return;
    }
    if (!Array.isArray(chat.messages) || chat.messages.length === 0) {
      send(
        res,
        rec,
        400,
        errorBody(
          "Missing required parameter: 'messages'.",
          "invalid_request_error",
          "missing_required_parameter",
          "messages",
        ),
      );
      return;
    }

    const id = completionId();
    const now = Math.floor(Date.now() / 1000);
    let pieces = splitCompletion(reply(chat));
    let finishReason = "stop";
    const max = chat.max_completion_tokens ?? chat.max_tokens;
    if (typeof max === "number" && max >= 0 && pieces.length > max) {
      pieces = pieces.slice(0, max);
      finishReason = "length";
    }
    const content = pieces.join("");
    const usage = {
      prompt_tokens: countPromptTokens(chat.messages),
      completion_tokens: pieces.length,
      total_tokens: 0,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;

    if (!chat.stream) {
      send(res, rec, 200, {
        id,
        object: "chat.completion",
        created: now,
        model: chat.model,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content, refusal: null, annotations: [] },
            logprobs: null,
            finish_reason: finishReason,
          },
        ],
        usage,
        service_tier: "default",
        system_fingerprint: "fp_fake",
      });
      return;
    }

    const includeUsage = chat.stream_options?.include_usage === true;
    rec.status = 200;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-request-id": `req_${randomBytes(8).toString("hex")}`,
    });
    res.flushHeaders();
    activeStreams++;
    let closed = false;
    let finished = false;
    res.on("close", () => {
      closed = true;
      if (!finished) abortedStreams++;
    });
    const base = {
      id,
      object: "chat.completion.chunk",
      created: now,
      model: chat.model,
      service_tier: "default",
      system_fingerprint: "fp_fake",
    };
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      sseData({ ...base, choices, ...(includeUsage ? { usage: null } : {}), ...extra });
    const choice = (delta: Record<string, unknown>, finish: string | null = null) => ({
      index: 0,
      delta,
      logprobs: null,
      finish_reason: finish,
    });

    try {
      const events: string[] = [chunk([choice({ role: "assistant", content: "", refusal: null })])];
      for (const p of pieces) events.push(chunk([choice({ content: p })]));
      events.push(chunk([choice({}, finishReason)]));
      if (includeUsage) events.push(chunk([], { usage }));
      events.push(SSE_DONE);
      for (let i = 0; i < events.length; i++) {
        if (closed) return;
        // Delay between content pieces so a proxy's pass-through can be observed.
        if (i > 0 && i <= pieces.length && chunkDelayMs > 0) await sleep(chunkDelayMs);
        if (closed) return;
        res.write(events[i]);
      }
      finished = true;
      res.end();
    } finally {
      activeStreams--;
    }
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        let body: unknown;
        if (raw !== "") {
          try {
            body = JSON.parse(raw);
          } catch {
            body = raw;
          }
        }
        const rec: RecordedRequest = { method: req.method ?? "GET", path: req.url ?? "/", headers: req.headers, body };
        requests.push(rec);
        if (responseDelayMs > 0) await sleep(responseDelayMs);
        const path = (req.url ?? "/").split("?")[0];
        if (req.method === "POST" && path === "/v1/chat/completions") {
          if (!checkAuth(req, res, rec) || takeFailure(res, rec)) return;
          await chatCompletions(req, res, rec);
        } else if (req.method === "GET" && path === "/v1/models") {
          if (!checkAuth(req, res, rec) || takeFailure(res, rec)) return;
          send(res, rec, 200, modelList(models, { created, ownedBy: "system" }));
        } else {
          send(res, rec, 404, errorBody(`Invalid URL (${req.method} ${path})`, "invalid_request_error", null));
        }
      })().catch((err: unknown) => {
        if (!res.headersSent) {
          res.writeHead(500, { "content-type": "application/json" });
          res.end(JSON.stringify(errorBody(`fake upstream crashed: ${String(err)}`, "server_error", null)));
        } else {
          res.destroy();
        }
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const origin = `http://127.0.0.1:${port}`;

  return {
    baseUrl: `${origin}/v1`,
    origin,
    port,
    requests,
    chatRequests: () => requests.filter((r) => r.method === "POST" && r.path.split("?")[0] === "/v1/chat/completions"),
    get activeStreams() {
      return activeStreams;
    },
    get abortedStreams() {
      return abortedStreams;
    },
    setExpectedApiKey: (key) => {
      expectedApiKey = key;
    },
    setChunkDelayMs: (ms) => {
      chunkDelayMs = ms;
    },
    setResponseDelayMs: (ms) => {
      responseDelayMs = ms;
    },
    setReply: (fn) => {
      reply = fn ?? defaultReply;
    },
    failNext: (failure) => {
      failures.push(failure);
    },
    reset: () => {
      requests.length = 0;
      failures.length = 0;
      abortedStreams = 0;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
