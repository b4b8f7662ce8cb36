import type { KeyRecord } from "../auth/key-index.js";
import type { AppContext } from "../context.js";
import { requestCostMicroUsd } from "../pricing/request-cost.js";
import type { Provider } from "../providers/types.js";
import { formatReset, reserve, settleUsage } from "../quota/enforce.js";
import type { LimitSpec, Metric } from "../quota/limits.js";
import { Reservation, type Lease, type Refusal } from "../quota/lease.js";
import { errors, type HttpError } from "./errors.js";
import type { RequestRecord } from "./6-request-record.js";
import type { GatewayResponse } from "./gateway-response.js";

/**
 * The quota gate of a request: fleet-wide limits checked and reserved before
 * the upstream call (a 429 naming the limit when one says no), the
 * x-ratelimit-* headers every answer then carries, and the reservation
 * settled with the real usage and cost after the answer.
 */

const LIMIT_WORDS: Record<Metric, string> = {
  rpm: "requests per minute",
  tpm: "tokens per minute",
  tpd: "tokens per day",
  budget: "budget",
  concurrency: "concurrent requests",
};

/** The header names, built once: a template literal per call made two strings per header per request. */
const RATE_HEADERS = {
  requests: ["x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"],
  tokens: ["x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"],
} as const;

/** Anthropic's names for the same figures, its reset an RFC 3339 instant. */
const ANTHROPIC_RATE_HEADERS = {
  requests: [
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
  ],
  tokens: [
    "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
  ],
} as const;

/** Routes whose clients read Anthropic's rate-limit headers (the upstream account's never reach them). */
const ANTHROPIC_ROUTES = new Set(["messages", "count_tokens"]);

function setRateHeaders(
  res: GatewayResponse,
  lease: Lease | null,
  kind: "requests" | "tokens",
  now: number,
  anthropic: boolean,
): void {
  if (!lease) return;
  // The values' strings are cached on the lease (per value, per second of the reset): they
  // change far less often than requests come.
  const [limit, remaining, reset] = RATE_HEADERS[kind];
  const capacityText = lease.capacityText();
  const remainingText = lease.remainingText();
  res.carry(limit, capacityText);
  res.carry(remaining, remainingText);
  res.carry(reset, lease.resetText(now));
  if (!anthropic) return;
  const [aLimit, aRemaining, aReset] = ANTHROPIC_RATE_HEADERS[kind];
  res.carry(aLimit, capacityText);
  res.carry(aRemaining, remainingText);
  res.carry(aReset, lease.resetInstantText());
}

export function refusalError(r: Refusal, key: KeyRecord): HttpError {
  const { spec, lease, retryAfterMs } = r;
  const who = spec.scope === "key" ? `key ${key.prefix}` : `${spec.scope} ${spec.counter.split(":")[1]}`;
  const headers: Record<string, string> = {};
  if (retryAfterMs !== null) headers["retry-after"] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  const unit = spec.metric === "rpm" || spec.metric === "concurrency" ? "requests" : "tokens";
  if (r.throttled) {
    return errors.rateLimitExceeded(
      `The ${LIMIT_WORDS[spec.metric]} limit of ${who} is nearly spent: requests without max_tokens are admitted one at a time on each gateway now. Retry in 1s, or set max_tokens.`,
      headers,
      unit,
    );
  }
  if (spec.metric === "budget") {
    const usd = (n: number) => `$${(n / 1e6).toFixed(2)}`;
    const when =
      retryAfterMs === null
        ? "It does not reset: ask an admin to raise budget_usd."
        : `It resets in ${formatReset(retryAfterMs)}.`;
    return errors.budgetExceeded(
      `Budget exceeded for ${who}: ${usd(lease.capacity)} ${spec.period === "total" ? "in total" : spec.period === "day" ? "per day" : "per month"}, and this request's estimated cost does not fit in what is left. ${when}`,
      headers,
      retryAfterMs === null,
    );
  }
  const retry = retryAfterMs === null ? "" : ` Retry in ${formatReset(retryAfterMs)}.`;
  return errors.rateLimitExceeded(
    `Rate limit reached for ${who} on ${LIMIT_WORDS[spec.metric]}: limit ${lease.capacity}, remaining ${lease.remaining()} across the fleet.${retry}`,
    headers,
    unit,
  );
}

/**
 * Checks every limit the key's request counts against, reserving its
 * estimated tokens and cost (from the body's size far from a limit, enforce.ts); refuses with 429 naming the limit. Sets the
 * x-ratelimit-* headers every answer then carries. Null: no limit applies.
 * A promise only when a lease must be fetched first: the common case costs no async hop.
 */
export function admitToQuota(
  ctx: AppContext,
  key: KeyRecord,
  provider: Provider,
  json: Record<string, unknown>,
  bodyBytes: number,
  rec: RequestRecord,
  res: GatewayResponse,
): Reservation | null | Promise<Reservation | null> {
  const specs = ctx.quota.limits.of(key);
  if (specs.length === 0) return null;
  const model = rec.upstreamModel ?? rec.model ?? "";
  const r = reserve(ctx.quota.manager, ctx.prices, specs, provider.kind, model, json, bodyBytes);
  if (r instanceof Promise) return r.then((settled) => admitted(ctx, key, specs, settled, rec, res));
  return admitted(ctx, key, specs, r, rec, res);
}

/** A reservation made (its headers set) or refused (a 429 thrown, with the limits' headers). */
function admitted(
  ctx: AppContext,
  key: KeyRecord,
  specs: readonly LimitSpec[],
  r: Reservation | Refusal,
  rec: RequestRecord,
  res: GatewayResponse,
): Reservation {
  // Reset headers in the control plane's time, like the windows they describe.
  const now = ctx.quota.clock.now();
  const anthropic = ANTHROPIC_ROUTES.has(rec.route);
  if (!(r instanceof Reservation)) {
    rec.error = `quota_${r.spec.metric}`;
    ctx.metrics.quotaRefused(r.spec.scope, r.spec.metric);
    const err = refusalError(r, key);
    // The refusing limit's headers, and the tightest others of the key as this gateway knows them.
    const own = (metric: Metric) =>
      r.spec.metric === metric ? r.lease : ctx.quota.manager.tightestKnown(specs, metric, now);
    setRateHeaders(res, own("rpm"), "requests", now, anthropic);
    setRateHeaders(res, own("tpm"), "tokens", now, anthropic);
    throw err;
  }
  setRateHeaders(res, r.tightest("rpm"), "requests", now, anthropic);
  setRateHeaders(res, r.tightest("tpm"), "tokens", now, anthropic);
  return r;
}

/**
 * Before the answer's last bytes: the request's cost from the provider's usage, then the
 * reservation and usage settled. The promise returned (if any) is the usage journal's
 * write, which the answer's last bytes await (settleUsage).
 */
export function settleQuota(
  ctx: AppContext,
  key: KeyRecord,
  provider: Provider,
  reservation: Reservation | null,
  rec: RequestRecord,
): Promise<void> | undefined {
  const cost = requestCostMicroUsd(ctx, rec);
  if (rec.usage && cost === null) ctx.metrics.unpricedRequest(rec.provider ?? provider.name);
  rec.costMicroUsd = cost;
  return settleUsage(ctx.quota, key, reservation, rec.usage, cost);
}
