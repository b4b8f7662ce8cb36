import { Pool, errors as undiciErrors } from "undici";
import { TOLLGATE_VERSION } from "@tollgate/shared";
import { UpstreamError, type ProviderResponse } from "./types.js";
import { LightSignal, type CallerSignal } from "./light-signal.js";

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

/** Whether a call's whole-request deadline has passed (an AbortSignal qualifies). */
export interface Deadline {
  readonly aborted: boolean;
}

/** Maps a transport failure to UpstreamError; anything else is rethrown as is. */
export function classifyUpstreamFailure(err: unknown, deadline: Deadline, origin: string): unknown {
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
  signal: CallerSignal;
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
      // One light signal and one timer per call, both dropped when the answer ends.
      // AbortSignal.timeout + AbortSignal.any cost about 40 µs per call more, and
      // their signals and timers lived on (held by the timer list) until the timeout.
      const state = new UpstreamCallState(call.signal, timeoutMs);
      try {
        const res = await pool.request({
          method: call.method,
          path: basePath + call.path,
          headers: { "user-agent": userAgent, ...call.headers },
          body: call.body,
          signal: state.signal,
        });
        const headers = passedResponseHeaders(res.headers);
        const ct = res.headers["content-type"];
        return {
          status: res.statusCode,
          contentType: Array.isArray(ct) ? ct[0] : ct,
          headers,
          body: mapBodyErrors(res.body, state, origin),
          // Reads a little (an error body) and closes; dump never rejects into the void.
          discard: () => {
            state.done();
            void res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
          },
        };
      } catch (err) {
        state.done();
        throw classifyUpstreamFailure(err, state, origin);
      }
    },
    // Called once the servers are closed; anything still open is abandoned.
    close: async () => {
      await pool.destroy();
    },
  };
}

/**
 * The abort signal undici sees for one call: the client's signal (the client
 * left) or the whole-request deadline, whichever comes first. `aborted` says
 * whether the deadline fired.
 */
class UpstreamCallState implements Deadline {
  /** The deadline fired. */
  aborted = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onClientAbort: () => void;
  readonly signal = new LightSignal();

  constructor(
    private readonly client: CallerSignal,
    timeoutMs: number,
  ) {
    const signal = this.signal;
    this.signal = signal;
    this.onClientAbort = () => signal.abort(client.reason);
    if (client.aborted) {
      signal.abort(client.reason);
      return;
    }
    client.addEventListener("abort", this.onClientAbort, { once: true });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.aborted = true;
      signal.abort(new DOMException("The upstream call timed out.", "TimeoutError"));
    }, timeoutMs);
    this.timer.unref();
  }

  /** The call is over (answered in full, failed or discarded): no more deadline, no more listener. */
  done(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.client.removeEventListener("abort", this.onClientAbort);
  }
}

async function* mapBodyErrors(body: AsyncIterable<Uint8Array>, call: UpstreamCallState, origin: string): AsyncIterable<Uint8Array> {
  try {
    yield* body;
  } catch (err) {
    throw classifyUpstreamFailure(err, call, origin);
  } finally {
    call.done();
  }
}

/** A client header's value when it is a plain string. */
export function headerString(v: string | string[] | undefined): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}
