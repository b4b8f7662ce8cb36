import type { IncomingMessage, OutgoingHttpHeader, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { KeyRecord } from "../auth/key-index.js";
import { checkProvider } from "../auth/policy.js";
import type { AppContext } from "../context.js";
import { LightSignal } from "../providers/light-signal.js";
import {
  ModelNotCallableError,
  UpstreamError,
  type Attempt,
  type Endpoint,
  type Provider,
  type ProviderRequest,
  type ProviderResponse,
} from "../providers/types.js";
import { drained } from "./respond.js";
import { errors, type HttpError } from "./errors.js";
import type { RequestRecord } from "./6-request-record.js";
import { UsageChunkFilter } from "./sse-filter.js";
import { modelOfBuffer, SseUsageTap, usageOfBuffer, type UsageFormat } from "../providers/usage.js";

/** What goes upstream when the client's bytes cannot: the rewritten body, and what the answer then needs. */
export interface UpstreamBody {
  body: Buffer;
  json: Record<string, unknown>;
  /** The gateway asked for a usage chunk the client did not: drop it from the stream. */
  hideUsageChunk: boolean;
}

/** Which upstream answered, and in whose format: for metrics and usage. */
interface PassOptions {
  provider: string;
  usage: UsageFormat;
  /** Rewrites a successful JSON answer (e.g. filters the model list); the bytes pass unchanged without it. */
  transform?: (body: Buffer) => Buffer;
  /** Drop the usage-only chunk of an OpenAI stream: the gateway asked for it, the client did not. */
  hideUsageChunk?: boolean;
  /** Streams: set once the upstream has finished its answer, so a client leaving then no longer aborts the upstream read. */
  answered?: { value: boolean };
  /** Streams: aborts the upstream read (bounds the read for usage after the client left). */
  abort?: LightSignal;
  /** Runs once the usage is known, before the answer's last bytes: settles it, which appends it to the usage journal (kill -9 safe). */
  beforeEnd?: () => Promise<void> | void;
}

/**
 * After a client leaves a stream whose answer the upstream already finished, the gateway keeps
 * reading the upstream for its usage chunk (else closing right after `finish_reason` would
 * evade usage, spend and budgets), but no further than this many bytes and this long.
 */
export const USAGE_DRAIN_MAX_BYTES = 256 * 1024;
export const USAGE_DRAIN_MAX_MS = 10_000;

/** Maps a failed upstream call to the client's answer, counting it. */
export function upstreamHttpError(
  ctx: AppContext,
  provider: string,
  err: UpstreamError,
  rec: RequestRecord,
): HttpError {
  ctx.metrics.upstreamError(provider, err.reason);
  rec.error = `upstream_${err.reason}`;
  return errors.upstreamFailed(err.status, err.message, err.reason === "timeout");
}

/** Passes an upstream answer on to the client, recording what the request record needs. */
type PassAnswer = (
  ctx: AppContext,
  res: ServerResponse,
  rec: RequestRecord,
  up: ProviderResponse,
  opts: PassOptions,
) => Promise<void>;

function countUpstreamStatus(ctx: AppContext, provider: string, status: number): void {
  ctx.metrics.upstreamResponse(provider, status);
  if (status >= 500) ctx.metrics.upstreamError(provider, "http_5xx");
  else if (status >= 400) ctx.metrics.upstreamError(provider, "http_4xx");
}

/**
 * The head of an answer passed on: its content type (or `fallbackType`), its length when known
 * (not negative), and the upstream's headers worth passing on, as the flat list writeHead takes
 * (no object spread per answer; up.headers never holds a content type or length).
 */
function answerHead(up: ProviderResponse, fallbackType: string, length: number): OutgoingHttpHeader[] {
  const head: OutgoingHttpHeader[] = ["content-type", up.contentType ?? fallbackType];
  if (length >= 0) head.push("content-length", length);
  const passed = up.headers;
  for (const name in passed) head.push(name, passed[name]!);
  return head;
}

async function readAll(body: ProviderResponse["body"]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  // Most answers arrive in one chunk: use it as is rather than copy it.
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/**
 * Buffers an upstream answer and passes status, content type and bytes on
 * unchanged, reading its usage when it is JSON.
 */
export const passBuffered: PassAnswer = async (ctx, res, rec, up, opts) => {
  countUpstreamStatus(ctx, opts.provider, up.status);
  // A small answer has usually arrived in full by now: taken at once, without an async iterator
  // and its promise per chunk.
  let body: Buffer = up.takeComplete?.() ?? (await readAll(up.body));
  const json = up.status < 300 && up.contentType?.includes("json") === true;
  if (opts.transform && json) body = opts.transform(body);
  // Only the usage member is parsed: the answer's content is passed on as bytes, never materialized.
  if (json) rec.usage = usageOfBuffer(opts.usage, body);
  // A request that named no model (a stored prompt): the answer names it, for pricing and the log.
  if (json && rec.model === null && rec.route === "responses") rec.model = modelOfBuffer(body);
  if (up.status === 401) {
    // The upstream refused the gateway's own credential. Its body names that credential (masked,
    // with its last characters): never the client's business, and a 401 would make the client
    // blame its own key. The client gets the gateway's error; the operator gets the log line.
    rec.error = "upstream_auth_failed";
    ctx.logger.error(
      { requestId: rec.requestId, provider: opts.provider },
      "the upstream refused the gateway's credential (401): check this provider's API key",
    );
    throw errors.upstreamAuthFailed(rec.requestId);
  }
  if (up.status >= 400) rec.error = `upstream_status_${up.status}`;
  const barrier = opts.beforeEnd?.();
  if (barrier) await barrier;
  res.writeHead(up.status, answerHead(up, "application/octet-stream", body.length));
  res.end(body);
};

/**
 * Streams an SSE answer through chunk by chunk as it arrives, tapping it for
 * usage. A failure after the headers went out can only cut the stream.
 */
export const passStreaming: PassAnswer = async (ctx, res, rec, up, opts) => {
  countUpstreamStatus(ctx, opts.provider, up.status);
  const head = answerHead(up, "text/event-stream", -1);
  // Tells nginx-style proxies in front of the gateway not to buffer either.
  head.push("cache-control", "no-cache", "x-accel-buffering", "no");
  res.writeHead(up.status, head);
  res.flushHeaders();
  const tap = new SseUsageTap(opts.usage);
  const filter = opts.hideUsageChunk ? new UsageChunkFilter() : undefined;
  let drainedBytes = 0;
  let settledEarly = false;
  let firstChunk = true;
  let drainTimer: NodeJS.Timeout | undefined;
  try {
    for await (const chunk of up.body) {
      if (firstChunk) {
        firstChunk = false;
        // From the client's point of view: the gateway's own time before the call counts too.
        ctx.metrics.firstTokenAfter(opts.provider, (performance.now() - rec.startedAt) / 1000);
      }
      if (res.destroyed) {
        // The client left. Before the answer was finished: stop (the abort ends the upstream call).
        // After it: read on, without writing, until the usage arrives or the bounds are hit.
        if (!tap.answered || tap.usage !== null || drainedBytes > USAGE_DRAIN_MAX_BYTES) break;
        drainTimer ??= setTimeout(() => opts.abort?.abort(), USAGE_DRAIN_MAX_MS);
        drainedBytes += chunk.byteLength;
        tap.push(chunk);
        rec.usage = tap.usage;
        if (tap.usage !== null) break;
        continue;
      }
      tap.push(chunk);
      if (tap.answered && opts.answered) opts.answered.value = true;
      rec.awaitingUsage = tap.answered && tap.usage === null;
      // Kept current: a client that leaves mid-stream is logged at once, with what was counted so far.
      rec.usage = tap.usage;
      if (!settledEarly && tap.answered && tap.usage !== null && opts.beforeEnd) {
        // The answer and its usage are known: journaled before the bytes that end the stream go out.
        settledEarly = true;
        const barrier = opts.beforeEnd();
        if (barrier) await barrier;
      }
      const out = filter ? filter.push(chunk) : chunk;
      if (out.length > 0 && !res.write(out)) await drained(res);
    }
    const rest = filter?.end();
    if (rest && rest.length > 0 && !res.destroyed) res.write(rest);
  } catch (err) {
    clearTimeout(drainTimer);
    tap.end();
    rec.usage = tap.usage;
    if (res.destroyed) return; // the client left; the abort ended the upstream read
    if (err instanceof UpstreamError) {
      ctx.metrics.upstreamError(opts.provider, err.reason);
      rec.error = `upstream_${err.reason}`;
    } else {
      ctx.metrics.upstreamError(opts.provider, "stream");
      rec.error = "upstream_stream_broken";
    }
    ctx.logger.warn(
      { requestId: rec.requestId, provider: opts.provider, err: (err as Error).message },
      "upstream stream broke; cutting the client stream",
    );
    res.destroy();
    return;
  }
  clearTimeout(drainTimer);
  tap.end();
  rec.usage = tap.usage;
  // A request that named no model (a stored prompt): the usage event names it, for pricing and the log.
  if (rec.model === null && rec.route === "responses") rec.model = tap.model;
  const barrier = settledEarly ? undefined : opts.beforeEnd?.();
  if (barrier) await barrier;
  res.end();
};

/**
 * Notes each upstream call in the request record (whose provider becomes the
 * last one called: the one that answered) and counts the ones a fallback replaced.
 */
function attemptRecorder(ctx: AppContext, rec: RequestRecord): (a: Attempt) => void {
  return (a) => {
    rec.provider = a.provider;
    // Two literals rather than a spread in the middle of one (built by copying at run time); same members, same order.
    (rec.attempts ??= []).push(
      a.status !== undefined
        ? { provider: a.provider, status: a.status, latencyMs: a.latencyMs }
        : { provider: a.provider, reason: a.reason, latencyMs: a.latencyMs },
    );
    if (!a.fellBack) return;
    // The answer that is kept is counted as it is passed on; a replaced one only here.
    if (a.status !== undefined) ctx.metrics.upstreamResponse(a.provider, a.status);
    const reason = a.reason ?? (a.status === 429 ? "http_429" : "http_5xx");
    ctx.metrics.upstreamFallback(a.provider, reason);
    ctx.metrics.upstreamError(a.provider, reason === "http_429" ? "http_4xx" : reason);
  };
}

/** What the provider is asked: the prepared body, the client's signal and headers, and the key's provider scope for fallbacks. */
function providerRequest(
  ctx: AppContext,
  endpoint: Endpoint,
  upstream: UpstreamBody,
  req: IncomingMessage,
  rec: RequestRecord,
  key: KeyRecord,
  abort: LightSignal,
): ProviderRequest {
  const r: ProviderRequest = {
    endpoint,
    body: upstream.body,
    json: upstream.json,
    stream: rec.stream,
    requestId: rec.requestId,
    signal: abort,
    headers: req.headers,
    onAttempt: attemptRecorder(ctx, rec),
    mayUse: (name: string) => checkProvider(key, name) === null,
  };
  // Set after, not spread into the literal: a spread in its middle built every request's object the slow way.
  const url = req.url;
  const q = url === undefined ? -1 : url.indexOf("?");
  if (q !== -1) r.query = new URLSearchParams(url!.slice(q + 1));
  return r;
}

/** A provider call or pass-through that failed: the client left (recorded; nobody to answer), or an error to answer. */
function failed(ctx: AppContext, err: unknown, aborted: boolean, rec: RequestRecord, provider: string): void {
  if (aborted) {
    rec.error = "client_closed";
    return;
  }
  if (err instanceof UpstreamError) throw upstreamHttpError(ctx, provider, err, rec);
  if (err instanceof ModelNotCallableError) throw errors.modelNotCallable(err.message);
  throw err;
}

/**
 * The upstream call: the provider (and its fallbacks) called with the body
 * the route prepared, the answer passed through to the client as it comes,
 * buffered or streamed. The client leaving aborts the upstream call (and its
 * billing) too.
 */
export async function forward(
  ctx: AppContext,
  endpoint: Endpoint,
  provider: Provider,
  format: UsageFormat,
  upstream: UpstreamBody,
  req: IncomingMessage,
  res: ServerResponse,
  rec: RequestRecord,
  key: KeyRecord,
  beforeEnd?: () => Promise<void> | void,
): Promise<void> {
  const abort = new LightSignal();
  const answered = { value: false };
  const onClose = () => {
    if (!res.writableFinished && !answered.value) abort.abort();
  };
  // Called by the request record's close listener (6-request-record), not a listener of its own.
  rec.onClose = onClose;

  let up: ProviderResponse;
  const calledAt = performance.now();
  try {
    up = await provider.call(providerRequest(ctx, endpoint, upstream, req, rec, key, abort));
  } catch (err) {
    rec.onClose = null;
    failed(ctx, err, abort.aborted, rec, rec.provider ?? provider.name);
    return;
  }
  const opts = {
    provider: rec.provider ?? provider.name,
    usage: format,
    hideUsageChunk: upstream.hideUsageChunk,
    answered,
    abort,
    beforeEnd,
  };
  try {
    if (rec.stream && up.status < 300 && up.contentType?.includes("text/event-stream") !== false)
      await passStreaming(ctx, res, rec, up, opts);
    else await passBuffered(ctx, res, rec, up, opts);
    ctx.metrics.upstreamDone(opts.provider, (performance.now() - calledAt) / 1000);
  } catch (err) {
    failed(ctx, err, abort.aborted, rec, opts.provider);
  } finally {
    rec.onClose = null;
    if (abort.aborted && !rec.error) rec.error = "client_closed";
    rec.awaitingUsage = false;
    rec.afterUsage?.();
  }
}
