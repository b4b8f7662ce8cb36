import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { newId } from "@tollgate/shared";
import type { AppContext } from "../context.js";
import type { UpstreamAttempt } from "../db/request-log-repository.js";
import type { RouteLabel } from "../metrics.js";
import type { Usage } from "../providers/usage.js";

/** What the request log and metrics learn about one request as it runs. */
export interface RequestRecord {
  requestId: string;
  route: RouteLabel;
  /** performance.now() at arrival. */
  startedAt: number;
  keyId: string | null;
  model: string | null;
  /** The configured provider the model routed to. */
  provider: string | null;
  stream: boolean;
  usage: Usage | null;
  /** Upstream calls made, in order (fallbacks included); null until the first. */
  attempts: UpstreamAttempt[] | null;
  error: string | null;
  /** The key's metadata JSON, echoed into the request log. */
  metadata: string | null;
  /** An ephemeral token was presented (keyId is then its parent's). */
  ephemeral: boolean;
  ephemeralTokenId: string | null;
  /** The model name sent upstream (a routing prefix such as `anthropic/` stripped); prices are looked up by it. */
  upstreamModel?: string | null;
  /** The request's cost from the price table, in micro-USD; null when unknown. */
  costMicroUsd?: number | null;
  /** An MCP request's server, tool and outcome (set by the MCP route). */
  mcp?: { server: string | null; tool: string | null; outcome: string } | null;
  /** A stream's answer is finished but its usage chunk has not arrived: a client leaving now does not record the request yet. */
  awaitingUsage?: boolean;
  /** A denial counted in a summary row instead of a row of its own (see DenialAggregator): metrics only. */
  skipLog?: boolean;
  /** The recording deferred while awaitingUsage, run once the usage is read (or the read gave up). */
  afterUsage?: () => void;
  /**
   * Run when the response closes, after the request is recorded: the upstream call under way
   * (5-forward) aborts itself if the answer is not done. One listener per response does both.
   */
  onClose: (() => void) | null;
}

/** Records the request when its response closes, or, for a stream still owed its usage, once that is read. */
export function recordOnClose(ctx: AppContext, rec: RequestRecord, res: ServerResponse): void {
  // A response closes once: `on`, without the wrapper `once` would allocate per request.
  res.on("close", () => {
    ctx.metrics.requestEnded();
    if (rec.awaitingUsage) rec.afterUsage = () => recordRequest(ctx, rec, res);
    else recordRequest(ctx, rec, res);
    rec.onClose?.();
  });
}

/** A request's record as it arrives, before any step has learnt anything of it. */
export function newRequestRecord(): RequestRecord {
  return {
    requestId: newId("req"),
    route: "not_found",
    startedAt: performance.now(),
    keyId: null,
    model: null,
    provider: null,
    stream: false,
    usage: null,
    attempts: null,
    error: null,
    metadata: null,
    ephemeral: false,
    ephemeralTokenId: null,
    // Every member the steps set later is here from the start: one shape for every record, so
    // V8 neither changes the object's hidden class nor grows its property store as a request runs.
    upstreamModel: null,
    costMicroUsd: null,
    mcp: null,
    awaitingUsage: false,
    skipLog: false,
    afterUsage: undefined,
    onClose: null,
  };
}

let isoSecond = Number.NaN;
let isoPrefix = "";
/** `new Date(ms).toISOString()`, formatting the date and time once per second: every request's log row needs one. */
function isoTime(ms: number): string {
  const t = Math.floor(ms);
  const second = Math.floor(t / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, -4); // up to and with the "."
  }
  const milli = t - second * 1000;
  return `${isoPrefix}${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z`;
}

/** Once the response is done (or the client gone): the request's metrics and its request log row. */
export function recordRequest(ctx: AppContext, rec: RequestRecord, res: ServerResponse): void {
  const latencyMs = performance.now() - rec.startedAt;
  // 499 (nginx's "client closed request"): the client left before any answer.
  const status = res.headersSent ? res.statusCode : 499;
  ctx.metrics.request(rec.route, status, latencyMs / 1000);
  if (rec.usage !== null && rec.provider !== null) ctx.metrics.usage(rec.provider, rec.usage, rec.costMicroUsd);
  if (rec.skipLog) return;
  ctx.logWriter.request({
    at: isoTime(ctx.clock.now()),
    requestId: rec.requestId,
    keyId: rec.keyId,
    model: rec.model,
    provider: rec.provider,
    status,
    promptTokens: rec.usage?.promptTokens ?? null,
    completionTokens: rec.usage?.completionTokens ?? null,
    totalTokens: rec.usage?.totalTokens ?? null,
    cacheReadTokens: rec.usage?.cacheReadTokens ?? null,
    cacheWriteTokens: rec.usage?.cacheWriteTokens ?? null,
    attempts: rec.attempts,
    latencyMs: Math.round(latencyMs * 1000) / 1000,
    stream: rec.stream,
    // Every refusal names its cause; one answered outside the handler (a broken body) at least its status.
    // A response cut before its end without a recorded cause: the client left (mid-stream).
    error:
      rec.error ??
      (status === 499 || !res.writableFinished ? "client_closed" : status >= 400 ? `http_${status}` : null),
    metadata: rec.metadata,
    ephemeral: rec.ephemeral,
    ephemeralTokenId: rec.ephemeralTokenId,
    // Settled by the quota gate (null when no usage or no price).
    costUsd: rec.costMicroUsd == null ? null : rec.costMicroUsd / 1e6,
    mcp: rec.mcp ?? null,
  });
}
