import { BudgetPeriod, CounterKind, QuotaMetric, QuotaScope } from "@tollgate/shared";
import type { KeyRecord } from "../auth/key-index.js";

/** What a counter counts. */
export type Metric = "rpm" | "tpm" | "tpd" | "budget" | "concurrency";
export type Scope = "key" | "user" | "team";

/** One limit a request must pass, resolved for a key (its own, its user's, its team's, or a default). */
export interface LimitSpec {
  /** The fleet-wide counter's name, e.g. `key:ak_…:rpm`. */
  counter: string;
  scope: Scope;
  metric: Metric;
  /** Units: requests, tokens, micro-USD or concurrent requests. */
  capacity: number;
  kind: CounterKind;
  /** For budgets: when they start over. */
  period: "minute" | "day" | "month" | "total" | "live";
}

/** Limits from control-plane configuration, for keys and teams that set none. */
export interface QuotaDefaults {
  keyRpmLimit: number | null;
  keyTpmLimit: number | null;
  keyTokensPerDayLimit: number | null;
  teamTpmLimit: number | null;
  teamDailyTokenLimit: number | null;
}

export const NO_DEFAULTS: QuotaDefaults = Object.freeze({
  keyRpmLimit: null,
  keyTpmLimit: null,
  keyTokensPerDayLimit: null,
  teamTpmLimit: null,
  teamDailyTokenLimit: null,
});

const METRIC_OF: Partial<Record<QuotaMetric, Metric>> = {
  [QuotaMetric.REQUESTS_PER_MINUTE]: "rpm",
  [QuotaMetric.TOKENS_PER_MINUTE]: "tpm",
  [QuotaMetric.TOKENS_PER_DAY]: "tpd",
  [QuotaMetric.CONCURRENT_REQUESTS]: "concurrency",
};
const SCOPE_OF: Partial<Record<QuotaScope, Scope>> = {
  [QuotaScope.KEY]: "key",
  [QuotaScope.USER]: "user",
  [QuotaScope.TEAM]: "team",
};

function spec(scope: Scope, subject: string, metric: Metric, capacity: number, budgetPeriod?: BudgetPeriod): LimitSpec {
  const period =
    metric === "rpm" || metric === "tpm"
      ? "minute"
      : metric === "tpd"
        ? "day"
        : metric === "concurrency"
          ? "live"
          : budgetPeriod === BudgetPeriod.DAILY
            ? "day"
            : budgetPeriod === BudgetPeriod.MONTHLY
              ? "month"
              : "total";
  return {
    counter: `${scope}:${subject}:${metric}`,
    scope,
    metric,
    capacity: Math.max(0, Math.floor(capacity)),
    kind: metric === "concurrency" ? CounterKind.GAUGE : CounterKind.WINDOW,
    period,
  };
}

/**
 * Every limit a key's requests count against, computed once per key version
 * (and defaults version) and cached on the record's identity.
 */
export class LimitResolver {
  private cache = new WeakMap<KeyRecord, LimitSpec[]>();
  private defaults: QuotaDefaults = NO_DEFAULTS;

  setDefaults(d: QuotaDefaults): void {
    this.defaults = d;
    this.cache = new WeakMap();
  }

  getDefaults(): QuotaDefaults {
    return this.defaults;
  }

  of(key: KeyRecord): LimitSpec[] {
    let specs = this.cache.get(key);
    if (specs === undefined) {
      specs = resolveLimits(key, this.defaults);
      this.cache.set(key, specs);
    }
    return specs;
  }
}

export function resolveLimits(key: KeyRecord, d: QuotaDefaults): LimitSpec[] {
  const p = key.policy;
  const out: LimitSpec[] = [];
  // Stand-ins for no key (DISABLE_AUTH, AUTH_BYPASS_PATHS) have no owner and nothing to count against.
  if (!key.id || !key.userId) return out;
  const rpm = p.rpmLimit ?? d.keyRpmLimit;
  const tpm = p.tpmLimit ?? d.keyTpmLimit;
  const tpd = p.tokensPerDayLimit ?? d.keyTokensPerDayLimit;
  if (rpm !== null) out.push(spec("key", key.id, "rpm", rpm));
  if (tpm !== null) out.push(spec("key", key.id, "tpm", tpm));
  if (tpd !== null) out.push(spec("key", key.id, "tpd", tpd));
  if (p.budgetUsd !== null) out.push(spec("key", key.id, "budget", Math.round(p.budgetUsd * 1e6), p.budgetPeriod));
  if (p.maxConcurrentRequests !== null) out.push(spec("key", key.id, "concurrency", p.maxConcurrentRequests));
  let teamTpm = false;
  let teamTpd = false;
  for (const l of p.ownerLimits) {
    const scope = SCOPE_OF[l.scope as QuotaScope];
    const metric = METRIC_OF[l.metric as QuotaMetric];
    if (!scope || !metric || !l.subjectId) continue;
    if (scope === "team" && metric === "tpm") teamTpm = true;
    if (scope === "team" && metric === "tpd") teamTpd = true;
    out.push(spec(scope, l.subjectId, metric, l.limit));
  }
  if (key.teamId) {
    if (!teamTpm && d.teamTpmLimit !== null) out.push(spec("team", key.teamId, "tpm", d.teamTpmLimit));
    if (!teamTpd && d.teamDailyTokenLimit !== null) out.push(spec("team", key.teamId, "tpd", d.teamDailyTokenLimit));
  }
  return out;
}

interface WindowAt {
  window: string;
  endsAtMs: number;
}
/** The last window computed per period, and from when it holds: every request asks, and the answer changes once a minute (or day, month). */
const lastWindow = new Map<LimitSpec["period"], { startsAtMs: number; at: WindowAt }>();

/** The window a moment falls in for a period, and when that window ends (0: never). */
export function windowOf(period: LimitSpec["period"], nowMs: number): { window: string; endsAtMs: number } {
  const last = lastWindow.get(period);
  if (last !== undefined && nowMs >= last.startsAtMs && (last.at.endsAtMs === 0 || nowMs < last.at.endsAtMs))
    return last.at;
  const { startsAtMs, ...at } = computeWindow(period, nowMs);
  lastWindow.set(period, { startsAtMs, at });
  return at;
}

function computeWindow(period: LimitSpec["period"], nowMs: number): WindowAt & { startsAtMs: number } {
  switch (period) {
    case "minute": {
      const m = Math.floor(nowMs / 60_000);
      return { window: `m:${m}`, startsAtMs: m * 60_000, endsAtMs: (m + 1) * 60_000 };
    }
    case "day": {
      const d = new Date(nowMs);
      const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
      return { window: `d:${d.toISOString().slice(0, 10)}`, startsAtMs: start, endsAtMs: start + 86_400_000 };
    }
    case "month": {
      const d = new Date(nowMs);
      const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
      return {
        window: `mo:${d.toISOString().slice(0, 7)}`,
        startsAtMs: start,
        endsAtMs: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1),
      };
    }
    case "total":
      return { window: "total", startsAtMs: -Infinity, endsAtMs: 0 };
    case "live":
      return { window: "live", startsAtMs: -Infinity, endsAtMs: 0 };
  }
}
