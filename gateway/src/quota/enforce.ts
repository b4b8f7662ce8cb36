import type { ServerResponse } from "node:http";
import type { KeyRecord } from "../auth/key-index.js";
import type { AppContext } from "../context.js";
import type { Provider } from "../providers/types.js";
import { HttpError } from "../routes/http.js";
import type { RequestRecord } from "../routes/request-record.js";
import { requestCostMicroUsd } from "../pricing/request-cost.js";
import { estimatePromptTokens, maxOutputTokens } from "./estimate.js";
import type { LimitSpec, Metric } from "./limits.js";
import { Reservation, type Lease, type Refusal } from "./lease.js";

/** Output tokens reserved for a request that sets no max_tokens (settled to the real count after). */
export const DEFAULT_RESERVED_OUTPUT_TOKENS = 1024;

const LIMIT_WORDS: Record<Metric, string> = {
  rpm: "requests per minute",
  tpm: "tokens per minute",
  tpd: "tokens per day",
  budget: "budget",
  concurrency: "concurrent requests",
};

/** OpenAI's reset format: "1s", "6m0s", "20ms". */
export function formatReset(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${m}m${s % 60}s` : `${m}m${s % 60}s`;
}

function needsTokens(specs: readonly LimitSpec[]): boolean {
  for (const s of specs) if (s.metric === "tpm" || s.metric === "tpd" || s.metric === "budget") return true;
  return false;
}

/** The header names, built once: a template literal per call made two strings per header per request. */
const RATE_HEADERS = {
  requests: ["x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"],
  tokens: ["x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"],
} as const;

function setRateHeaders(res: ServerResponse, lease: Lease | null, kind: "requests" | "tokens", now: number): void {
  if (!lease) return;
  const [limit, remaining, reset] = RATE_HEADERS[kind];
  res.setHeader(limit, lease.capacityText());
  res.setHeader(remaining, String(lease.remaining()));
  res.setHeader(reset, formatReset(lease.endsAtMs - now));
}

function refusalError(r: Refusal, key: KeyRecord): HttpError {
  const { spec, lease, retryAfterMs } = r;
  const who = spec.scope === "key" ? `key ${key.prefix}` : `${spec.scope} ${spec.counter.split(":")[1]}`;
  const headers: Record<string, string> = {};
  if (retryAfterMs !== null) headers["retry-after"] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  if (r.throttled) {
    return new HttpError(
      429,
      `The ${LIMIT_WORDS[spec.metric]} limit of ${who} is nearly spent: requests without max_tokens are admitted one at a time on each gateway now. Retry in 1s, or set max_tokens.`,
      "rate_limit_error",
      "rate_limit_exceeded",
      null,
      headers,
    );
  }
  if (spec.metric === "budget") {
    const usd = (n: number) => `$${(n / 1e6).toFixed(2)}`;
    const when = retryAfterMs === null ? "It does not reset: ask an admin to raise budget_usd." : `It resets in ${formatReset(retryAfterMs)}.`;
    return new HttpError(
      429,
      `Budget exceeded for ${who}: ${usd(lease.capacity)} ${spec.period === "total" ? "in total" : spec.period === "day" ? "per day" : "per month"}, and this request's estimated cost does not fit in what is left. ${when}`,
      "insufficient_quota",
      "budget_exceeded",
      null,
      headers,
    );
  }
  const retry = retryAfterMs === null ? "" : ` Retry in ${formatReset(retryAfterMs)}.`;
  return new HttpError(
    429,
    `Rate limit reached for ${who} on ${LIMIT_WORDS[spec.metric]}: limit ${lease.capacity}, remaining ${lease.remaining()} across the fleet.${retry}`,
    "rate_limit_error",
    "rate_limit_exceeded",
    null,
    headers,
  );
}

export interface Admission {
  reservation: Reservation;
  promptEstimate: number;
}

/**
 * Checks every limit the key's request counts against (key, user, team),
 * reserving its estimated tokens and cost; refuses with 429 naming the
 * limit. Sets the x-ratelimit-* headers every answer then carries.
 */
export async function admit(
  ctx: AppContext,
  key: KeyRecord,
  provider: Provider,
  json: Record<string, unknown>,
  rec: RequestRecord,
  res: ServerResponse,
): Promise<Admission | null> {
  const specs = ctx.quota.limits.of(key);
  if (specs.length === 0) return null;
  let promptEstimate = 0;
  let tokens = 0;
  let cost = 0;
  let outputCapped = true;
  if (needsTokens(specs)) {
    promptEstimate = estimatePromptTokens(json);
    const cap = maxOutputTokens(json);
    outputCapped = cap !== null;
    const maxOut = cap ?? DEFAULT_RESERVED_OUTPUT_TOKENS;
    tokens = promptEstimate + maxOut;
    cost = ctx.prices.estimateMicroUsd(provider.kind, rec.upstreamModel ?? rec.model ?? "", promptEstimate, maxOut) ?? 0;
  }
  let r = ctx.quota.manager.admit(specs, { tokens, costMicroUsd: cost, outputCapped });
  if (r instanceof Promise) r = await r;
  // Reset headers in the control plane's time, like the windows they describe.
  const now = ctx.quota.clock.now();
  if (!(r instanceof Reservation)) {
    rec.error = `quota_${r.spec.metric}`;
    ctx.metrics.quotaRefused(r.spec.scope, r.spec.metric);
    const err = refusalError(r, key);
    // The refusing limit's headers, and the tightest others of the key as this gateway knows them.
    const own = (metric: Metric) => (r.spec.metric === metric ? r.lease : ctx.quota.manager.tightestKnown(specs, metric, now));
    setRateHeaders(res, own("rpm"), "requests", now);
    setRateHeaders(res, own("tpm"), "tokens", now);
    throw err;
  }
  setRateHeaders(res, r.tightest("rpm"), "requests", now);
  setRateHeaders(res, r.tightest("tpm"), "tokens", now);
  return { reservation: r, promptEstimate };
}

/**
 * After the answer: the request's cost from the provider's usage, the
 * reservation settled, and its usage queued for the control plane.
 */
export function settle(ctx: AppContext, key: KeyRecord, provider: Provider, admission: Admission | null, rec: RequestRecord): void {
  const u = rec.usage;
  const tokens = u ? (u.totalTokens ?? (u.promptTokens ?? 0) + (u.completionTokens ?? 0)) : null;
  const cost = requestCostMicroUsd(ctx, rec);
  if (u && cost === null) ctx.metrics.unpricedRequest(rec.provider ?? provider.name);
  rec.costMicroUsd = cost;
  if (admission) {
    // No usage (an error, a client that left): the reservation stands as the best estimate of what was spent.
    ctx.quota.manager.settle(admission.reservation, { tokens, costMicroUsd: u ? (cost ?? 0) : null });
  }
  // Stand-ins for no key (DISABLE_AUTH, AUTH_BYPASS_PATHS) have no owner: nothing to report.
  if (key.id && key.userId) {
    ctx.quota.outbox.add({
      keyId: key.id,
      userId: key.userId,
      teamId: key.teamId,
      // Fleet time: the usage's UTC day must be the day its budget window counted it in.
      atMs: ctx.quota.clock.now(),
      inputTokens: u?.promptTokens ?? 0,
      outputTokens: u?.completionTokens ?? 0,
      costMicroUsd: cost ?? 0,
    });
    ctx.quota.touch();
  }
}
