import type { AppContext } from "../context.js";
import type { Attempt, Endpoint } from "../providers/types.js";
import type { RequestRecord } from "./request-record.js";

/** What goes upstream when the client's bytes cannot: the rewritten body, and what the answer then needs. */
export interface UpstreamBody {
  body: Buffer;
  json: Record<string, unknown>;
  /** The gateway asked for a usage chunk the client did not: drop it from the stream. */
  hideUsageChunk: boolean;
}

/** OpenAI-format streams that only report usage when asked (stream_options.include_usage). */
const USAGE_ON_REQUEST = new Set<Endpoint>(["chat_completions", "completions"]);

/**
 * The body to send upstream. The client's bytes pass unchanged unless the
 * routing prefix is stripped from the model or a stream must be asked for
 * its usage; then the already parsed JSON is serialized once.
 */
export function upstreamBody(endpoint: Endpoint, body: Buffer, json: Record<string, unknown>, upstreamModel: string, stream: boolean): UpstreamBody {
  const options = json.stream_options;
  const hideUsageChunk =
    stream && USAGE_ON_REQUEST.has(endpoint) && (options === null || typeof options !== "object" || (options as { include_usage?: unknown }).include_usage !== true);
  if (!hideUsageChunk && upstreamModel === json.model) return { body, json, hideUsageChunk };
  const rewritten: Record<string, unknown> = { ...json, model: upstreamModel };
  if (hideUsageChunk) {
    rewritten.stream_options = { ...(options !== null && typeof options === "object" && !Array.isArray(options) ? options : {}), include_usage: true };
  }
  return { body: Buffer.from(JSON.stringify(rewritten)), json: rewritten, hideUsageChunk };
}

/**
 * Notes each upstream call in the request record (whose provider becomes the
 * last one called: the one that answered) and counts the ones a fallback replaced.
 */
export function attemptRecorder(ctx: AppContext, rec: RequestRecord): (a: Attempt) => void {
  return (a) => {
    rec.provider = a.provider;
    (rec.attempts ??= []).push({ provider: a.provider, ...(a.status !== undefined ? { status: a.status } : { reason: a.reason }), latencyMs: a.latencyMs });
    if (!a.fellBack) return;
    const reason = a.reason ?? (a.status === 429 ? "http_429" : "http_5xx");
    ctx.metrics.upstreamFallback(a.provider, reason);
    ctx.metrics.upstreamError(a.provider, reason === "http_429" ? "http_4xx" : reason);
  };
}
