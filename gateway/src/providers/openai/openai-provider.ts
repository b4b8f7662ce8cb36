import { Pool, errors as undiciErrors } from "undici";
import { TOLLGATE_VERSION } from "@tollgate/shared";
import { UpstreamError, type ChatRequest, type Provider, type ProviderResponse } from "../types.js";

export interface OpenAiProviderOptions {
  /** Base URL including /v1, as the openai SDK takes it. */
  baseUrl: string;
  apiKey: string | undefined;
  /** Whole-request deadline. */
  timeoutMs: number;
}

const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_CLOSED",
]);

/** Maps a transport failure to UpstreamError; anything else is rethrown as is. */
export function classifyUpstreamFailure(err: unknown, deadline: AbortSignal, origin: string): unknown {
  if (err instanceof UpstreamError) return err;
  const code = (err as { code?: string } | null)?.code;
  if (
    deadline.aborted ||
    err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError ||
    code === "UND_ERR_HEADERS_TIMEOUT" ||
    code === "UND_ERR_BODY_TIMEOUT"
  ) {
    return new UpstreamError("timeout", `The upstream provider at ${origin} did not answer in time.`, { cause: err });
  }
  if (code !== undefined && CONNECT_CODES.has(code)) {
    return new UpstreamError("connect", `Could not reach the upstream provider at ${origin} (${code}).`, { cause: err });
  }
  return err;
}

/**
 * OpenAI (or any OpenAI-compatible server). Keeps one keep-alive pool to the
 * upstream origin; sends the gateway's upstream key, never the client's.
 */
export function createOpenAiProvider(options: OpenAiProviderOptions): Provider {
  const base = new URL(options.baseUrl);
  const origin = base.origin;
  const basePath = base.pathname.replace(/\/+$/, "");
  const pool = new Pool(origin, {
    connections: null,
    keepAliveTimeout: 30_000,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    connect: { timeout: 10_000 },
  });
  const baseHeaders: Record<string, string> = { "user-agent": `tollgate-gateway/${TOLLGATE_VERSION}` };
  if (options.apiKey !== undefined) baseHeaders.authorization = `Bearer ${options.apiKey}`;

  async function call(
    method: "GET" | "POST",
    path: string,
    signal: AbortSignal,
    requestId: string,
    body?: Buffer,
    accept?: string,
  ): Promise<ProviderResponse> {
    const deadline = AbortSignal.timeout(options.timeoutMs);
    const headers: Record<string, string> = { ...baseHeaders, "x-request-id": requestId };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (accept !== undefined) headers.accept = accept;
    try {
      const res = await pool.request({
        method,
        path: basePath + path,
        headers,
        body,
        signal: AbortSignal.any([signal, deadline]),
      });
      const ct = res.headers["content-type"];
      return {
        status: res.statusCode,
        contentType: Array.isArray(ct) ? ct[0] : ct,
        body: mapBodyErrors(res.body, deadline, origin),
      };
    } catch (err) {
      throw classifyUpstreamFailure(err, deadline, origin);
    }
  }

  return {
    name: "openai",
    chatCompletions: (req: ChatRequest) =>
      call("POST", "/chat/completions", req.signal, req.requestId, req.body, req.stream ? "text/event-stream" : "application/json"),
    listModels: (signal, requestId) => call("GET", "/models", signal, requestId),
    // Called once the servers are closed; anything still open is abandoned.
    close: async () => {
      await pool.destroy();
    },
  };
}

async function* mapBodyErrors(
  body: AsyncIterable<Uint8Array>,
  deadline: AbortSignal,
  origin: string,
): AsyncIterable<Uint8Array> {
  try {
    yield* body;
  } catch (err) {
    throw classifyUpstreamFailure(err, deadline, origin);
  }
}
