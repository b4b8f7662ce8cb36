import { hostname } from "node:os";
import { resolve } from "node:path";
import {
  ConfigError,
  describeValue,
  envBool,
  envDurationMs,
  envInt,
  envEnum,
  envOptional,
  envPort,
  envRequired,
  envString,
  envUrl,
  mcpSecretsFromEnv,
  parseDurationMs,
  parseTrustedProxies,
  resolveSecretFiles,
} from "@tollgate/shared";
import { loadProviders, type ProviderConfig } from "./providers/provider-config.js";
import { loadConnectionLimits, type ConnectionLimits } from "./config/connection-limits.js";
import { loadControlPlaneTls, type ControlPlaneTls } from "./config/control-plane-tls.js";

export {
  DEFAULT_ANTHROPIC_BASE_URL,
  DEFAULT_OPENAI_BASE_URL,
  type ProviderConfig,
} from "./providers/provider-config.js";
export type { ControlPlaneTls } from "./config/control-plane-tls.js";
export { compileTrustedProxies } from "@tollgate/shared";

export interface GatewayConfig {
  /** MCP: MCP_SECRET_* credentials that servers' `env:` references resolve to, and MCP_MAX_MESSAGE_BYTES. */
  mcp: { secrets: ReadonlyMap<string, string>; maxMessageBytes: number };
  /** gRPC endpoint of the control plane (HTTP/2). */
  controlPlaneUrl: string;
  /** TLS settings for an https:// control plane; empty for the system CAs and no client certificate. */
  controlPlaneTls: ControlPlaneTls;
  gatewayToken: string;
  gatewayName: string;
  /** Directory holding gateway.db; created when missing. */
  dataDir: string;
  host: string;
  /** Client API port; 0 picks a free one. */
  port: number;
  /** /metrics, /healthz, /readyz port; 0 picks a free one. */
  statusPort: number;
  /**
   * The upstreams, in routing order (PROVIDERS_FILE, then the ANTHROPIC_* and
   * OPENAI_* shorthands); the mock alone when nothing is configured. Never empty.
   */
  providers: ProviderConfig[];
  /** UPSTREAM_TIMEOUT: the default whole-request deadline of a provider. */
  upstreamTimeoutMs: number;
  maxBodyBytes: number;
  logLevel: string;
  /** SYNC_TRACE=true: stamp each stage of every key change on stderr (bench/README.md, "Where the time goes"). */
  syncTrace?: boolean;
  /**
   * SYNC_COMPRESSION=true: ask the control plane to gzip the key stream. Off by default: key
   * hashes and ids are random, so gzip only halves a snapshot (14.5 → 6.4 MB per 100,000 keys)
   * at 4.5–6.8 ms of control-plane CPU per 1,000 keys; worth it only on links slower than about
   * 100 Mbit/s.
   */
  syncCompression?: boolean;
  /** How long stop() lets in-flight requests finish before cutting them. */
  shutdownGraceMs: number;
  /**
   * MAX_STALENESS: with no contact with the control plane for longer than
   * this, the gateway fails closed (503). Null: never (serve the cache forever).
   */
  maxStalenessMs: number | null;
  /**
   * SYNC_HEARTBEAT_INTERVAL: how often a connected gateway acknowledges its revision as a
   * liveness report, to a control plane that does not take the open stream as liveness
   * (releases before stream liveness; a current one says so in its settings).
   */
  syncHeartbeatIntervalMs: number;
  /**
   * TRUSTED_PROXIES: addresses and CIDRs of proxies whose X-Forwarded-For is
   * believed for IP allowlists. Empty: never (the socket's peer is the client).
   */
  trustedProxies: string[];
  /** Per-IP blocking after repeated invalid keys (BRUTE_FORCE_*). */
  bruteForce: { enabled: boolean; maxFailedAttempts: number; ttlMs: number };
  /**
   * AUTH_BYPASS_PATHS: client-port paths served without a key (exact, trailing
   * slash removed). Empty by default.
   */
  authBypassPaths: string[];
  /** DISABLE_AUTH=true: no client authentication at all. Development only. */
  disableAuth: boolean;
  /** MAX_HEADER_BYTES: request line plus headers of a client request; more gets 431. */
  maxHeaderBytes: number;
  /**
   * REQUEST_TIMEOUT: the whole client request (headers and body) must arrive
   * within this, or it gets 408 and the connection closes (a slow body holds
   * no connection forever). The answer, a long stream included, is not limited by it.
   */
  requestTimeoutMs: number;
  /** Client-port connection bounds (MAX_CONNECTIONS, MAX_CONNECTIONS_PER_CLIENT, CLIENT_IDLE_TIMEOUT, HEADERS_TIMEOUT); defaults when absent. */
  connectionLimits?: ConnectionLimits;
  /** LOG_RETENTION: request-log and audit rows older than this are deleted (null: kept for ever); default 30 days when absent. */
  logRetentionMs?: number | null;
  /** USAGE_JOURNAL_FSYNC=on: an fdatasync per usage-journal line, so usage survives a power loss too (about 2 ms per request). */
  usageJournalFsync?: boolean;
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** LOG_RETENTION when unset: 30 days. */
export const DEFAULT_LOG_RETENTION_MS = 30 * 86_400_000;

const DEFAULT_CONTROL_PLANE_URL = "http://127.0.0.1:50051";
/** The longest delay a Node timer takes (2^31 − 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Anthropic documents 32 MB requests (base64 images and PDFs are large); a
 * lower default refuses calls the provider would take. The body is held
 * once as bytes while its JSON is parsed, so a large request costs a few
 * times its size while in flight (gateway/README.md, "Request size").
 */
const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;
const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
const MIN_HEADER_BYTES = 1024;
const MAX_HEADER_BYTES_CEILING = 1024 * 1024;
/** A longer request target (path and query) gets 414. */
export const MAX_URL_BYTES = 8 * 1024;
/** A JSON request body nested deeper than this gets 400 json_too_deep. */
export const MAX_JSON_DEPTH = 64;

const BYTE_UNITS: Record<string, number> = { "": 1, b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** Parses `4194304`, `512KiB`, `4MiB` or `1GiB` into bytes. */
function parseBytes(value: string): number | undefined {
  const m = /^(\d+)\s*(b|kib|mib|gib)?$/i.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * (BYTE_UNITS[(m[2] ?? "").toLowerCase()] ?? NaN);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** MAX_STALENESS: a positive duration, or unset / "never" for no limit. */
function loadMaxStaleness(env: Env): number | null {
  const raw = envOptional(env, "MAX_STALENESS");
  if (raw === undefined || raw.trim().toLowerCase() === "never") return null;
  const ms = parseDurationMs(raw);
  if (ms === undefined || ms <= 0) {
    throw new ConfigError(
      `MAX_STALENESS must be a positive duration such as 30s, 10m or 1h, or "never", got ${describeValue(raw)}`,
    );
  }
  return ms;
}

/**
 * AUTH_BYPASS_PATHS: comma-separated exact paths, each starting with "/"; a
 * trailing slash is dropped, as it is from request paths.
 */
export function parseAuthBypassPaths(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  const out: string[] = [];
  for (const entry of raw.split(",").map((e) => e.trim())) {
    if (entry === "") continue;
    if (!entry.startsWith("/")) {
      throw new ConfigError(
        `AUTH_BYPASS_PATHS must be a comma-separated list of paths starting with "/", such as /v1/models; one entry (${describeValue(entry)}) does not`,
      );
    }
    if (/[?#*\s]/.test(entry)) {
      throw new ConfigError(
        `AUTH_BYPASS_PATHS entries are exact paths without query, fragment, spaces or wildcards; one entry (${describeValue(entry)}) is not one`,
      );
    }
    const path = entry.length > 1 && entry.endsWith("/") ? entry.slice(0, -1) : entry;
    if (!out.includes(path)) out.push(path);
  }
  return out;
}

function loadMaxHeaderBytes(env: Env): number {
  const raw = envOptional(env, "MAX_HEADER_BYTES");
  if (raw === undefined) return DEFAULT_MAX_HEADER_BYTES;
  const n = parseBytes(raw);
  if (n === undefined || n < MIN_HEADER_BYTES || n > MAX_HEADER_BYTES_CEILING) {
    throw new ConfigError(
      `MAX_HEADER_BYTES must be a size from 1KiB to 1MiB such as 16384 or 16KiB, got ${describeValue(raw)}`,
    );
  }
  return n;
}

/**
 * The secret settings: each may instead be given as NAME_FILE, the path of a
 * file holding it (MCP_SECRET_<NAME>_FILE and a providers file's api_key_env
 * names work the same way).
 */
export const GATEWAY_SECRET_VARIABLES = [
  "GATEWAY_TOKEN",
  "OPENAI_API_KEY",
  "ANTHROPIC_API_KEY",
  "GEMINI_API_KEY",
] as const;

/**
 * Builds the gateway config from environment variables. The only place that
 * reads them; a wrong value throws a ConfigError naming the variable.
 */
export function loadConfig(rawEnv: Env): GatewayConfig {
  const env = resolveSecretFiles(rawEnv, GATEWAY_SECRET_VARIABLES);
  const controlPlaneUrl = envUrl(env, "CONTROL_PLANE_URL", DEFAULT_CONTROL_PLANE_URL) ?? DEFAULT_CONTROL_PLANE_URL;
  const gatewayToken = envRequired(
    env,
    "GATEWAY_TOKEN",
    "create a gateway token on the control plane with POST /internal/gateway-tokens (Authorization: Bearer $PROXY_MASTER_KEY) and pass it to the gateway",
  );

  const upstreamTimeoutMs = envDurationMs(env, "UPSTREAM_TIMEOUT", 600_000);
  // setTimeout's limit: a longer delay would fire at once.
  if (upstreamTimeoutMs <= 0 || upstreamTimeoutMs > MAX_TIMER_MS) {
    throw new ConfigError(
      `UPSTREAM_TIMEOUT must be positive and at most 24d, got ${describeValue(env.UPSTREAM_TIMEOUT)}`,
    );
  }
  const providers = loadProviders(env, upstreamTimeoutMs);

  let maxBodyBytes = DEFAULT_MAX_BODY_BYTES;
  const rawMaxBody = envOptional(env, "MAX_BODY_BYTES");
  if (rawMaxBody !== undefined) {
    const parsed = parseBytes(rawMaxBody);
    if (parsed === undefined) {
      throw new ConfigError(
        `MAX_BODY_BYTES must be a positive size in bytes such as 4194304 or 4MiB, got ${describeValue(rawMaxBody)}`,
      );
    }
    maxBodyBytes = parsed;
  }

  const syncHeartbeatIntervalMs = envDurationMs(env, "SYNC_HEARTBEAT_INTERVAL", 5_000);
  if (syncHeartbeatIntervalMs <= 0) {
    throw new ConfigError(
      `SYNC_HEARTBEAT_INTERVAL must be positive, got ${describeValue(env.SYNC_HEARTBEAT_INTERVAL)}`,
    );
  }

  return {
    mcp: { secrets: mcpSecretsFromEnv(env), maxMessageBytes: loadMcpMaxMessageBytes(env) },
    controlPlaneUrl,
    controlPlaneTls: loadControlPlaneTls(env, controlPlaneUrl),
    gatewayToken,
    gatewayName: envString(env, "GATEWAY_NAME", hostname()),
    dataDir: resolve(envString(env, "DATA_DIR", "./.data/gateway")),
    host: envString(env, "HOST", "0.0.0.0"),
    port: envPort(env, "PORT", 8080),
    statusPort: envPort(env, "STATUS_PORT", 8081),
    providers,
    upstreamTimeoutMs,
    maxBodyBytes,
    logLevel: envEnum(env, "LOG_LEVEL", LOG_LEVELS, "info"),
    syncTrace: envBool(env, "SYNC_TRACE", false),
    syncCompression: envBool(env, "SYNC_COMPRESSION", false),
    shutdownGraceMs: 10_000,
    maxStalenessMs: loadMaxStaleness(env),
    syncHeartbeatIntervalMs,
    trustedProxies: parseTrustedProxies(envOptional(env, "TRUSTED_PROXIES")),
    bruteForce: {
      enabled: envBool(env, "BRUTE_FORCE_PROTECTION", true),
      maxFailedAttempts: envInt(env, "BRUTE_FORCE_MAX_FAILED_ATTEMPTS", 5, 1, 1_000_000),
      ttlMs: envDurationMs(env, "BRUTE_FORCE_TTL", 900_000),
    },
    authBypassPaths: parseAuthBypassPaths(envOptional(env, "AUTH_BYPASS_PATHS")),
    disableAuth: envBool(env, "DISABLE_AUTH", false),
    maxHeaderBytes: loadMaxHeaderBytes(env),
    requestTimeoutMs: loadRequestTimeout(env),
    connectionLimits: loadConnectionLimits(env),
    logRetentionMs: loadLogRetention(env),
    usageJournalFsync: envEnum(env, "USAGE_JOURNAL_FSYNC", ["on", "off"] as const, "off") === "on",
  };
}

/** LOG_RETENTION: a duration of at least 1h, or "never". */
function loadLogRetention(env: Env): number | null {
  const raw = envOptional(env, "LOG_RETENTION");
  if (raw === undefined) return DEFAULT_LOG_RETENTION_MS;
  if (raw.trim().toLowerCase() === "never") return null;
  const ms = parseDurationMs(raw);
  if (ms === undefined || ms < 3_600_000)
    throw new ConfigError('LOG_RETENTION must be a duration of at least 1h such as 30d, or "never"');
  return ms;
}

/** MCP_MAX_MESSAGE_BYTES: the largest MCP message a client may send (default 1 MiB). */
function loadMcpMaxMessageBytes(env: Record<string, string | undefined>): number {
  const raw = envOptional(env, "MCP_MAX_MESSAGE_BYTES");
  if (raw === undefined) return 1024 * 1024;
  const parsed = parseBytes(raw);
  if (parsed === undefined)
    throw new ConfigError(
      `MCP_MAX_MESSAGE_BYTES must be a positive size in bytes such as 1048576 or 1MiB, got ${JSON.stringify(raw)}`,
    );
  return parsed;
}

/** REQUEST_TIMEOUT: at least 1 s, at most 1 h (default 60 s). */
function loadRequestTimeout(env: Record<string, string | undefined>): number {
  const ms = envDurationMs(env, "REQUEST_TIMEOUT", 60_000);
  if (ms < 1_000 || ms > 3_600_000) {
    throw new ConfigError(`REQUEST_TIMEOUT must be between 1s and 1h, got ${describeValue(env.REQUEST_TIMEOUT)}`);
  }
  return ms;
}
