import { Pool, errors as undiciErrors } from "undici";
import { TOLLGATE_VERSION } from "@tollgate/shared";
import { UpstreamError, type ProviderResponse } from "./types.js";

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

/**
 * Upstream response headers a client may rely on: request ids, timing, retry
 * hints and Anthropic's rate-limit figures. An allowlist, so no credential,
 * cookie or account identifier can slip through; never `x-ratelimit-*`, which
 * the gateway sets itself for the key's own quota.
 */
const PASSED_RESPONSE_HEADERS = new Set([
  "request-id",
  "openai-processing-ms",
  "openai-version",
  "retry-after",
  "retry-after-ms",
  "x-should-retry",
  "apim-request-id",
  "x-ms-region",
]);
const PASSED_RESPONSE_PREFIXES = ["anthropic-ratelimit-"];
/** The gateway's own request id is x-request-id; the upstream's travels under this name. */
export const UPSTREAM_REQUEST_ID_HEADER = "x-upstream-request-id";

/** The upstream response headers the client sees (see PASSED_RESPONSE_HEADERS). */
export function passedResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(headers)) {
    if (typeof v !== "string") continue;
    const lower = name.toLowerCase();
    if (lower === "x-request-id") out[UPSTREAM_REQUEST_ID_HEADER] = v;
    else if (PASSED_RESPONSE_HEADERS.has(lower) || PASSED_RESPONSE_PREFIXES.some((p) => lower.startsWith(p))) out[lower] = v;
  }
  return out;
}

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

export interface UpstreamCall {
  method: "GET" | "POST";
  /** Path below the base URL's path, e.g. "/chat/completions". */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  signal: AbortSignal;
}

/**
 * One keep-alive pool to an upstream origin, with a whole-request deadline
 * and transport failures mapped to UpstreamError (also while the body streams).
 */
export interface HttpUpstream {
  readonly origin: string;
  request(call: UpstreamCall): Promise<ProviderResponse>;
  close(): Promise<void>;
}

export function createHttpUpstream(baseUrl: string, timeoutMs: number): HttpUpstream {
  const base = new URL(baseUrl);
  const origin = base.origin;
  const basePath = base.pathname.replace(/\/+$/, "");
  const pool = new Pool(origin, {
    connections: null,
    keepAliveTimeout: 30_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: { timeout: 10_000 },
  });
  const userAgent = `tollgate-gateway/${TOLLGATE_VERSION}`;
  return {
    origin,
    async request(call) {
      const deadline = AbortSignal.timeout(timeoutMs);
      try {
        const res = await pool.request({
          method: call.method,
          path: basePath + call.path,
          headers: { "user-agent": userAgent, ...call.headers },
          body: call.body,
          signal: AbortSignal.any([call.signal, deadline]),
        });
        const headers = passedResponseHeaders(res.headers);
        const ct = res.headers["content-type"];
        return {
          status: res.statusCode,
          contentType: Array.isArray(ct) ? ct[0] : ct,
          headers,
          body: mapBodyErrors(res.body, deadline, origin),
          // Reads a little (an error body) and closes; dump never rejects into the void.
          discard: () => void res.body.dump({ limit: 64 * 1024 }).catch(() => undefined),
        };
      } catch (err) {
        throw classifyUpstreamFailure(err, deadline, origin);
      }
    },
    // Called once the servers are closed; anything still open is abandoned.
    close: async () => {
      await pool.destroy();
    },
  };
}

async function* mapBodyErrors(body: AsyncIterable<Uint8Array>, deadline: AbortSignal, origin: string): AsyncIterable<Uint8Array> {
  try {
    yield* body;
  } catch (err) {
    throw classifyUpstreamFailure(err, deadline, origin);
  }
}

/** A client header's value when it is a plain string. */
export function headerString(v: string | string[] | undefined): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}
