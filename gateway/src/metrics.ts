import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { EVENT_LOOP_SAMPLE_MS } from "@tollgate/shared";
import type { Usage } from "./providers/usage.js";
import type { AuthFailureReason } from "./auth/authenticate.js";
import type { PolicyRule } from "./auth/policy.js";
import {
  LATENCY_BUCKETS,
  STATUS_CLASSES,
  buildInfo,
  type ProviderSeries,
  type QuotaGaugeSource,
  type RouteLabel,
  type SyncGaugeSource,
  type RejectedRequestReason,
  type UpstreamErrorReason,
  type UpstreamFallbackReason,
  type SyncApplyKind,
} from "./metric-labels.js";

export {
  LATENCY_BUCKETS,
  type QuotaGaugeSource,
  type RejectedRequestReason,
  type RouteLabel,
  type StatusClass,
  type SyncApplyKind,
  type SyncGaugeSource,
  type UpstreamErrorReason,
  type UpstreamFallbackReason,
} from "./metric-labels.js";

/**
 * A counter series' increments summed in a plain number on the request path
 * and handed to prom-client when the metric is read (its `collect`): a
 * labelled child's inc() builds a labels object and hashes it on every call.
 * Only for whole-number counts, whose sum is the same in any order.
 */
class PendingCount {
  n = 0;
  constructor(private readonly child: Counter.Internal) {}

  flush(): void {
    if (this.n === 0) return;
    const n = this.n;
    this.n = 0;
    this.child.inc(n);
  }
}

function flushAll(pending: readonly PendingCount[]): void {
  for (const p of pending) p.flush();
}

/** A provider's series, its per-request counts pending (PendingCount). */
type HotProviderSeries = Omit<ProviderSeries, "input" | "output" | "responses"> & {
  input: PendingCount;
  output: PendingCount;
  responses: PendingCount[];
};

/**
 * The gateway's metrics, on a registry of its own (several gateways may share
 * a process in tests). Labels are bounded: no key id, user id or raw model.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"route" | "status">;
  private readonly duration: Histogram<"route">;
  private readonly authFailures: Counter<"reason">;
  private readonly blockedClients: Gauge;
  private readonly policyDenials: Counter<"rule">;
  private readonly upstreamErrors: Counter<"provider" | "reason">;
  private readonly upstreamFallbacks: Counter<"provider" | "reason">;
  private readonly appliedRevision: Gauge;
  private readonly keysCached: Gauge;
  private readonly syncConnected: Gauge;
  private readonly applies: Counter<"kind" | "result">;
  private readonly cacheRecovered: Counter;
  private readonly heartbeats: Counter<"result">;
  private readonly authDisabled: Gauge;
  private readonly rejected: Counter<"reason">;
  private readonly quotaRefusals: Counter<"scope" | "limit">;
  private readonly quotaDegraded: Gauge;
  private readonly unpriced: Counter<"provider">;
  private readonly logRowsDropped: Counter;
  private readonly mcpRequests: Counter<"server" | "method" | "outcome">;
  private readonly tokens: Counter<"provider" | "type">;
  private readonly cost: Counter<"provider">;
  private readonly upstreamDuration: Histogram<"provider">;
  private readonly firstToken: Histogram<"provider">;
  private readonly inFlight: Gauge;
  private readonly upstreamResponses: Counter<"provider" | "status_class">;
  private readonly byProvider = new Map<string, HotProviderSeries>();
  /** Client requests received and not yet answered: the in-flight gauge reads it when collected. */
  private inFlightCount = 0;
  /** Every PendingCount of a counter, flushed by that counter's collect. */
  private readonly pendingRequests: PendingCount[] = [];
  private readonly pendingTokens: PendingCount[] = [];
  private readonly pendingResponses: PendingCount[] = [];
  /**
   * Each route's series, looked up once: a labels object per call makes prom-client
   * hash the label set on every request. Bounded: routes are a fixed set, statuses HTTP's.
   */
  private readonly byRoute = new Map<
    RouteLabel,
    { duration: Histogram.Internal<"route">; byStatus: Map<number, PendingCount> }
  >();

  constructor(sync: SyncGaugeSource, sources: QuotaGaugeSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    this.mcpRequests = new Counter({
      name: "tollgate_gateway_mcp_requests_total",
      help: "MCP requests by server (admin-defined names; `unknown` for a name that is not one, `*` for the aggregated /mcp), JSON-RPC method and outcome. Never a tool name.",
      labelNames: ["server", "method", "outcome"],
      registers,
    });
    this.requests = new Counter({
      name: "tollgate_gateway_requests_total",
      help: "Client requests by route and HTTP status.",
      labelNames: ["route", "status"],
      registers,
      collect: () => flushAll(this.pendingRequests),
    });
    this.duration = new Histogram({
      name: "tollgate_gateway_request_duration_seconds",
      help: "Client request duration, from first byte in to last byte out.",
      labelNames: ["route"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.inFlight = new Gauge({
      name: "tollgate_gateway_requests_in_flight",
      help: "Client requests received and not yet answered (or left by their client).",
      registers,
      collect: () => this.inFlight.set(this.inFlightCount),
    });
    this.tokens = new Counter({
      name: "tollgate_gateway_tokens_total",
      help: "Tokens the upstream reported, by provider and type (input, output, cache_read, cache_write), counted once the request is settled. input is the provider's own figure: OpenAI-style counts include cache reads, Anthropic's do not.",
      labelNames: ["provider", "type"],
      registers,
      collect: () => flushAll(this.pendingTokens),
    });
    this.cost = new Counter({
      name: "tollgate_gateway_cost_usd_total",
      help: "Cost of requests in USD from the price table, by provider (unpriced requests add nothing).",
      labelNames: ["provider"],
      registers,
    });
    this.upstreamDuration = new Histogram({
      name: "tollgate_gateway_upstream_duration_seconds",
      help: "Time from calling the upstream (fallbacks included) to the last byte of its answer, by the provider that answered.",
      labelNames: ["provider"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.firstToken = new Histogram({
      name: "tollgate_gateway_time_to_first_token_seconds",
      help: "Streamed requests: time from the request's arrival to the first upstream stream chunk, by provider.",
      labelNames: ["provider"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.upstreamResponses = new Counter({
      name: "tollgate_gateway_upstream_responses_total",
      help: "Upstream HTTP answers (those a fallback replaced included) by provider and status class.",
      labelNames: ["provider", "status_class"],
      registers,
      collect: () => flushAll(this.pendingResponses),
    });
    const build = buildInfo(new URL("../package.json", import.meta.url));
    new Gauge({
      name: "tollgate_build_info",
      help: "Always 1; labels name the service, its version and source revision.",
      labelNames: ["service", "version", "revision"],
      registers,
    }).set({ service: "gateway", version: build.version, revision: build.revision }, 1);
    this.authFailures = new Counter({
      name: "tollgate_gateway_auth_failures_total",
      help: "Refused client requests by reason.",
      labelNames: ["reason"],
      registers,
    });
    this.blockedClients = new Gauge({
      name: "tollgate_gateway_blocked_clients",
      help: "Client IPs currently blocked after repeated invalid keys.",
      registers,
    });
    this.policyDenials = new Counter({
      name: "tollgate_gateway_policy_denials_total",
      help: "Authenticated requests refused (403) by a key scope: provider, model or ip.",
      labelNames: ["rule"],
      registers,
    });
    this.upstreamErrors = new Counter({
      name: "tollgate_gateway_upstream_errors_total",
      help: "Upstream provider failures by provider and reason.",
      labelNames: ["provider", "reason"],
      registers,
    });
    this.upstreamFallbacks = new Counter({
      name: "tollgate_gateway_upstream_fallbacks_total",
      help: "Upstream calls abandoned for the next provider of a fallback chain, by the provider that failed and why.",
      labelNames: ["provider", "reason"],
      registers,
    });
    this.appliedRevision = new Gauge({
      name: "tollgate_gateway_sync_applied_revision",
      help: "Last key-sync revision durably applied.",
      registers,
    });
    this.keysCached = new Gauge({
      name: "tollgate_gateway_keys_cached",
      help: "Keys in the in-memory index.",
      registers,
    });
    this.syncConnected = new Gauge({
      name: "tollgate_gateway_sync_connected",
      help: "1 while the sync stream to the control plane is up.",
      registers,
    });
    new Gauge({
      name: "tollgate_gateway_sync_seconds_since_contact",
      help: "Seconds since the last contact with the control plane: a stream message or a successful acknowledgement, possibly before a restart (-1 before the first).",
      registers,
      collect() {
        this.set(sync.secondsSinceContact() ?? -1);
      },
    });
    new Gauge({
      name: "tollgate_gateway_sync_last_contact_timestamp_seconds",
      help: "Unix time of the last contact with the control plane (0 before the first).",
      registers,
      collect() {
        this.set(sync.lastContactMs === null ? 0 : sync.lastContactMs / 1000);
      },
    });
    new Gauge({
      name: "tollgate_gateway_sync_lag_revisions",
      help: "Control plane revision minus applied revision, as of the last message (-1 before the first).",
      registers,
      collect() {
        this.set(sync.lag() ?? -1);
      },
    });
    new Gauge({
      name: "tollgate_gateway_sync_stale",
      help: "1 while the gateway fails closed because it had no contact with the control plane for longer than MAX_STALENESS.",
      registers,
      collect() {
        this.set(sync.staleForMs() === null ? 0 : 1);
      },
    });
    this.applies = new Counter({
      name: "tollgate_gateway_sync_applies_total",
      help: "Applied snapshots and change batches by result.",
      labelNames: ["kind", "result"],
      registers,
    });
    this.cacheRecovered = new Counter({
      name: "tollgate_gateway_cache_recovered_total",
      help: "Damaged SQLite key caches moved aside at boot and replaced by an empty one.",
      registers,
    });
    this.heartbeats = new Counter({
      name: "tollgate_gateway_sync_heartbeats_total",
      help: "Liveness acknowledgements sent to the control plane (SYNC_HEARTBEAT_INTERVAL), by result; skipped: one was still in flight.",
      labelNames: ["result"],
      registers,
    });
    this.authDisabled = new Gauge({
      name: "tollgate_gateway_auth_disabled",
      help: "1 while client authentication is disabled (DISABLE_AUTH=true): anyone who can reach the client port uses the upstream credentials.",
      registers,
    });
    this.rejected = new Counter({
      name: "tollgate_gateway_rejected_requests_total",
      help: "Client requests refused for their form (size and depth limits, unparsable HTTP), by reason.",
      labelNames: ["reason"],
      registers,
    });
    this.quotaRefusals = new Counter({
      name: "tollgate_gateway_quota_refusals_total",
      help: "Requests refused with 429 by a fleet-wide limit, by scope (key, user, team) and limit (rpm, tpm, tpd, budget, concurrency).",
      labelNames: ["scope", "limit"],
      registers,
    });
    this.quotaDegraded = new Gauge({
      name: "tollgate_gateway_quota_degraded",
      help: "1 while the control plane's quota service is unreachable and each counter is held to an even share of its limit on this gateway.",
      registers,
    });
    const outbox: Gauge = new Gauge({
      name: "tollgate_gateway_usage_outbox_rows",
      help: "Usage reports waiting in the SQLite outbox for the control plane's acknowledgement (each holds a log batch's per-key totals).",
      registers,
      collect: () => outbox.set(sources.outboxBacklog()),
    });
    const clockOffset: Gauge = new Gauge({
      name: "tollgate_gateway_clock_offset_seconds",
      help: "Seconds to add to this host's clock to get the control plane's, as last measured on a quota Acquire (quota windows use the corrected time).",
      registers,
      collect: () => clockOffset.set(sources.clockOffsetMs() / 1000),
    });
    let journalFailuresSeen = 0;
    const journalFailures: Counter = new Counter({
      name: "tollgate_gateway_usage_journal_failures_total",
      help: "Failed opens and writes of the usage journal (disk full or read-only): usage waiting for its batch's commit is then in memory only, and a kill -9 would lose it.",
      registers,
      collect: () => {
        const n = sources.usageJournalFailures();
        if (n > journalFailuresSeen) journalFailures.inc(n - journalFailuresSeen);
        journalFailuresSeen = n;
      },
    });
    this.unpriced = new Counter({
      name: "tollgate_gateway_unpriced_requests_total",
      help: "Requests whose model has no price in the price table: they cost nothing against budgets.",
      labelNames: ["provider"],
      registers,
    });
    this.logRowsDropped = new Counter({
      name: "tollgate_gateway_log_rows_dropped_total",
      help: "Request and audit log rows dropped because the SQLite writes fell too far behind (a full or failing disk).",
      registers,
    });
    this.syncConnected.set(0);
    this.authDisabled.set(0);
  }

  quotaRefused(scope: string, limit: string): void {
    this.quotaRefusals.inc({ scope, limit });
  }

  setQuotaDegraded(degraded: boolean): void {
    this.quotaDegraded.set(degraded ? 1 : 0);
  }

  logRowDropped(rows: number): void {
    this.logRowsDropped.inc(rows);
  }

  unpricedRequest(provider: string): void {
    this.unpriced.inc({ provider });
  }

  setAuthDisabled(disabled: boolean): void {
    this.authDisabled.set(disabled ? 1 : 0);
  }

  rejectedRequest(reason: RejectedRequestReason): void {
    this.rejected.inc({ reason });
  }

  cacheRecoveredAtBoot(): void {
    this.cacheRecovered.inc();
  }

  heartbeat(result: "ok" | "error" | "skipped"): void {
    this.heartbeats.inc({ result });
  }

  request(route: RouteLabel, status: number, seconds: number): void {
    let r = this.byRoute.get(route);
    if (r === undefined) {
      r = { duration: this.duration.labels(route), byStatus: new Map() };
      this.byRoute.set(route, r);
    }
    let requests = r.byStatus.get(status);
    if (requests === undefined) {
      requests = new PendingCount(this.requests.labels(route, String(status)));
      this.pendingRequests.push(requests);
      r.byStatus.set(status, requests);
    }
    requests.n++;
    r.duration.observe(seconds);
  }

  private series(provider: string): HotProviderSeries {
    let s = this.byProvider.get(provider);
    if (s === undefined) {
      const input = new PendingCount(this.tokens.labels(provider, "input"));
      const output = new PendingCount(this.tokens.labels(provider, "output"));
      const responses = STATUS_CLASSES.map((c) => new PendingCount(this.upstreamResponses.labels(provider, c)));
      this.pendingTokens.push(input, output);
      this.pendingResponses.push(...responses);
      s = {
        input,
        output,
        cacheRead: this.tokens.labels(provider, "cache_read"),
        cacheWrite: this.tokens.labels(provider, "cache_write"),
        cost: this.cost.labels(provider),
        upstreamDuration: this.upstreamDuration.labels(provider),
        firstToken: this.firstToken.labels(provider),
        responses,
      };
      this.byProvider.set(provider, s);
    }
    return s;
  }

  requestStarted(): void {
    this.inFlightCount++;
  }

  requestEnded(): void {
    this.inFlightCount--;
  }

  /** A settled request's usage and cost (micro-USD, null when unpriced), by the provider that answered. */
  usage(provider: string, usage: Usage, costMicroUsd: number | null | undefined): void {
    const s = this.series(provider);
    // Finite and positive only: a negative figure or an upstream's 1e309 (Infinity) in the pending sum
    // would make prom-client's inc throw at every later scrape.
    if (usage.promptTokens !== null && usage.promptTokens > 0 && Number.isFinite(usage.promptTokens))
      s.input.n += usage.promptTokens;
    if (usage.completionTokens !== null && usage.completionTokens > 0 && Number.isFinite(usage.completionTokens))
      s.output.n += usage.completionTokens;
    if (usage.cacheReadTokens) s.cacheRead.inc(usage.cacheReadTokens);
    if (usage.cacheWriteTokens) s.cacheWrite.inc(usage.cacheWriteTokens);
    if (costMicroUsd) s.cost.inc(costMicroUsd / 1e6);
  }

  /** One HTTP answer from an upstream. */
  upstreamResponse(provider: string, status: number): void {
    const cls = Math.trunc(status / 100);
    this.series(provider).responses[cls >= 1 && cls <= 5 ? cls : 5]!.n++;
  }

  upstreamDone(provider: string, seconds: number): void {
    this.series(provider).upstreamDuration.observe(seconds);
  }

  firstTokenAfter(provider: string, seconds: number): void {
    this.series(provider).firstToken.observe(seconds);
  }

  setBlockedClients(n: number): void {
    this.blockedClients.set(n);
  }

  authFailure(reason: AuthFailureReason | "blocked"): void {
    this.authFailures.inc({ reason });
  }

  /** Bounded: the caller passes a known server name (or unknown/*), a known method (or other) and an outcome from a fixed set. */
  mcpRequest(server: string, method: string, outcome: string): void {
    this.mcpRequests.inc({ server, method, outcome });
  }

  policyDenied(rule: PolicyRule): void {
    this.policyDenials.inc({ rule });
  }

  upstreamError(provider: string, reason: UpstreamErrorReason): void {
    this.upstreamErrors.inc({ provider, reason });
  }

  upstreamFallback(provider: string, reason: UpstreamFallbackReason): void {
    this.upstreamFallbacks.inc({ provider, reason });
  }

  syncApplied(kind: SyncApplyKind, ok: boolean): void {
    this.applies.inc({ kind, result: ok ? "ok" : "error" });
  }

  syncState(s: { appliedRevision: number; keys: number; connected: boolean }): void {
    this.appliedRevision.set(s.appliedRevision);
    this.keysCached.set(s.keys);
    this.syncConnected.set(s.connected ? 1 : 0);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
