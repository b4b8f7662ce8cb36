import { readFileSync } from "node:fs";
import type { Counter, Histogram } from "prom-client";

// The label values, buckets and gauge sources of the gateway's metrics (declared in metrics.ts).

/** Route label values: fixed, never taken from the request path. */
export type RouteLabel =
  | "chat_completions"
  | "completions"
  | "embeddings"
  | "responses"
  | "messages"
  | "count_tokens"
  | "models"
  | "mcp"
  | "not_found";
export type UpstreamErrorReason = "connect" | "timeout" | "http_4xx" | "http_5xx" | "stream" | "invalid_response";
/** Why a fallback chain left a provider for the next one. */
export type UpstreamFallbackReason = "http_5xx" | "http_429" | "timeout" | "connect";
export type SyncApplyKind = "snapshot" | "delta";
/** Client requests refused for their form before routing or authentication. */
export type RejectedRequestReason =
  | "header_too_large"
  | "url_too_long"
  | "json_too_deep"
  | "missing_host"
  | "parse_error"
  | "request_timeout"
  | "connect_method"
  | "expectation_failed";

/** An upstream answer's HTTP status, by its first digit. */
export type StatusClass = "1xx" | "2xx" | "3xx" | "4xx" | "5xx";
export const STATUS_CLASSES: readonly StatusClass[] = ["1xx", "1xx", "2xx", "3xx", "4xx", "5xx"];

/**
 * Latency buckets in seconds, up to the 600 s upstream timeout (a long generation is slow, not
 * off the scale).
 */
export const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
];

/**
 * The series one provider's requests touch, bound once per provider: the provider label is
 * admin-defined (bounded), and a bound child spares a labels object per request.
 */
export interface ProviderSeries {
  input: Counter.Internal;
  output: Counter.Internal;
  cacheRead: Counter.Internal;
  cacheWrite: Counter.Internal;
  cost: Counter.Internal;
  upstreamDuration: Histogram.Internal<"provider">;
  firstToken: Histogram.Internal<"provider">;
  responses: Counter.Internal[];
}

/** The service's version (its package.json, or TOLLGATE_VERSION) and source revision (TOLLGATE_REVISION, set by the image build). */
export function buildInfo(packageJsonUrl: URL): { version: string; revision: string } {
  let version = process.env.TOLLGATE_VERSION ?? "";
  if (!version) {
    try {
      version = (JSON.parse(readFileSync(packageJsonUrl, "utf8")) as { version?: string }).version ?? "unknown";
    } catch {
      version = "unknown";
    }
  }
  return { version, revision: process.env.TOLLGATE_REVISION || "unknown" };
}

/** Live sync figures read at scrape time. */
export interface SyncGaugeSource {
  secondsSinceContact(): number | null;
  lastContactMs: number | null;
  lag(): number | null;
  /** Non-null while failing closed for MAX_STALENESS. */
  staleForMs(): number | null;
}

/** Live quota figures read at scrape time. */
export interface QuotaGaugeSource {
  /** Usage reports waiting in the outbox. */
  outboxBacklog(): number;
  /** The offset from the control plane's clock in use. */
  clockOffsetMs(): number;
  /** Failed opens and writes of the usage journal since start. */
  usageJournalFailures(): number;
}
