import { readFileSync } from "node:fs";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { EVENT_LOOP_SAMPLE_MS } from "@tollgate/shared";

/** The service's version (its package.json, or TOLLGATE_VERSION) and source revision (TOLLGATE_REVISION, set by the image build). */
function buildInfo(): { version: string; revision: string } {
  let version = process.env.TOLLGATE_VERSION ?? "";
  if (!version) {
    try {
      const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: string };
      version = pkg.version ?? "unknown";
    } catch {
      version = "unknown";
    }
  }
  return { version, revision: process.env.TOLLGATE_REVISION || "unknown" };
}

/** One registry per control-plane instance; labels stay low-cardinality. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const build = buildInfo();
  new Gauge({
    name: "tollgate_build_info",
    help: "Always 1; labels name the service, its version and source revision",
    labelNames: ["service", "version", "revision"] as const,
    registers: [registry],
  }).set({ service: "control-plane", version: build.version, revision: build.revision }, 1);
  const httpRequests = new Counter({
    name: "tollgate_cp_http_requests_total",
    help: "Admin API requests by method, route pattern and status",
    labelNames: ["method", "route", "status"] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: "tollgate_cp_http_request_duration_seconds",
    help: "Admin API latency",
    labelNames: ["route"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const syncStreams = new Gauge({
    name: "tollgate_cp_sync_streams",
    help: "Open gateway sync streams on this replica",
    registers: [registry],
  });
  const changesSent = new Counter({
    name: "tollgate_cp_sync_changes_sent_total",
    help: "Change-log entries streamed to gateways",
    registers: [registry],
  });
  const snapshotsSent = new Counter({
    name: "tollgate_cp_sync_snapshots_sent_total",
    help: "Full snapshots streamed to gateways, by reason",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const syncAuthFailures = new Counter({
    name: "tollgate_cp_sync_auth_failures_total",
    help: "Sync calls refused for a missing, unknown or revoked gateway token",
    registers: [registry],
  });
  const acks = new Counter({
    name: "tollgate_cp_sync_acks_total",
    help: "Acknowledgements received from gateways, by result",
    labelNames: ["result"] as const,
    registers: [registry],
  });
  const syncPings = new Counter({
    name: "tollgate_cp_sync_pings_total",
    help: "HTTP/2 pings to gateway connections that carry a sync stream (their liveness), by outcome",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const adminAuthFailures = new Counter({
    name: "tollgate_cp_admin_auth_failures_total",
    help: "Admin API calls refused for a missing or invalid master key, or from a blocked client",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const ssoSignIns = new Counter({
    name: "tollgate_cp_sso_sign_ins_total",
    help: "SSO sign-ins by outcome: ok, rate_limited (a start refused at /auth/login), or the reason a callback was refused (a fixed list)",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const blockedClients = new Gauge({
    name: "tollgate_cp_blocked_clients",
    help: "Client IPs currently blocked after repeated invalid master keys",
    registers: [registry],
  });
  const quotaAcquires = new Histogram({
    name: "tollgate_cp_quota_acquire_duration_seconds",
    help: "Time to grant one Acquire call (all its counters, one transaction)",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const quotaCounters = new Counter({
    name: "tollgate_cp_quota_limit_statements_total",
    help: "Limit counter statements granted in Acquire calls (promtool forbids the word counter in the name)",
    registers: [registry],
  });
  const usageReports = new Counter({
    name: "tollgate_cp_usage_reports_total",
    help: "Usage reports received from gateways, by outcome (applied, or duplicate of one already applied)",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const budgetAlerts = new Counter({
    name: "tollgate_cp_budget_alerts_total",
    help: "Budget alert thresholds crossed, by threshold percentage",
    labelNames: ["threshold"] as const,
    registers: [registry],
  });
  const alertDeliveries = new Counter({
    name: "tollgate_cp_alert_webhook_deliveries_total",
    help: "Budget alert webhook delivery attempts, by result",
    labelNames: ["result"] as const,
    registers: [registry],
  });
  return {
    registry,
    quotaAcquire(counters: number, seconds: number) {
      quotaAcquires.observe(seconds);
      quotaCounters.inc(counters);
    },
    usageReports(received: number, appliedGroups: number) {
      if (received === 0) return;
      usageReports.inc({ outcome: appliedGroups > 0 ? "applied" : "duplicate" }, received);
    },
    budgetAlert: (threshold: number) => budgetAlerts.inc({ threshold: String(threshold) }),
    alertDelivery: (result: "delivered" | "failed") => alertDeliveries.inc({ result }),
    adminAuthFailure: (reason: "missing" | "invalid" | "blocked") => adminAuthFailures.inc({ reason }),
    /** `outcome` is "ok" or an SsoFailureReason: bounded, never an email or a domain. */
    ssoSignIn: (outcome: string) => ssoSignIns.inc({ outcome }),
    setBlockedClients: (n: number) => blockedClients.set(n),
    httpRequest(method: string, route: string, status: number, seconds: number) {
      httpRequests.inc({ method, route, status: String(status) });
      httpDuration.observe({ route }, seconds);
    },
    streamOpened: () => syncStreams.inc(),
    streamClosed: () => syncStreams.dec(),
    changesSent: (n: number) => changesSent.inc(n),
    snapshotSent: (reason: string) => snapshotsSent.inc({ reason }),
    syncAuthFailure: () => syncAuthFailures.inc(),
    ack: (result: "ok" | "error" | "unknown_gateway") => acks.inc({ result }),
    syncPing: (outcome: "answered" | "timeout") => syncPings.inc({ outcome }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
