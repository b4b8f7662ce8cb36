import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { DEFAULT_SESSION_LIMITS, type SessionLimits } from "./rpc/session-guard.js";
import { ConfigError, describeValue, envDurationMs, envEnum, envInt, envOptional, envOptionalInt, envPort, envString, envUrl } from "@tollgate/shared";

export interface ControlPlaneConfig {
  host: string;
  /** Admin HTTP API port; 0 picks a free one. */
  port: number;
  grpcPort: number;
  masterKey: string;
  /** Unset: embedded PGlite under dataDir. */
  databaseUrl: string | undefined;
  databaseSchema: string;
  dataDir: string;
  logLevel: string;
  /** Heartbeat period on idle sync streams. */
  heartbeatIntervalMs: number;
  maxBodyBytes: number;
  /** Body limit of bulk imports (10,000 keys). */
  maxBulkBodyBytes: number;
  /** A gateway not heard from for this long shows as offline. */
  gatewayOfflineAfterMs: number;
  /** Change-log entries younger than this are kept; older ones are compacted away. */
  changeLogRetentionMs: number;
  /** How often compaction runs. */
  compactionIntervalMs: number;
  /** Wait after a change before reading the log, to batch bursts into one push. */
  syncDebounceMs: number;
  /** Per-IP blocking after repeated invalid master keys. */
  bruteForce: { enabled: boolean; maxFailedAttempts: number; ttlMs: number };
  /** TLS for the gRPC port; unset = plaintext. */
  grpcTls: { cert: Buffer; key: Buffer; clientCa: Buffer | undefined } | undefined;
  /** REQUEST_TIMEOUT: an admin request (headers and body) not received within this gets 408; 60 s when absent. */
  requestTimeoutMs?: number;
  /** gRPC session bounds: GRPC_AUTH_TIMEOUT, GRPC_MAX_SESSIONS, GRPC_MAX_SESSIONS_PER_CLIENT; defaults when absent. */
  grpcSessions?: SessionLimits;
  /** Dashboard sessions: SESSION_IDLE_TIMEOUT and SESSION_MAX_AGE. */
  sessions: { idleMs: number; maxAgeMs: number };
  quota: {
    /** Limits for keys and teams that set none of their own. */
    defaults: QuotaDefaultsConfig;
    /** Unused units a gateway holds come back to the fleet when not renewed within this time. */
    leaseTtlMs: number;
  };
  alerts: {
    /** Budget alerts are POSTed here as JSON; unset: recorded in the audit log only. */
    webhookUrl: string | undefined;
    /** Signs each delivery (X-Tollgate-Signature: sha256=HMAC of the body). */
    webhookSecret: string | undefined;
  };
}

export interface QuotaDefaultsConfig {
  keyRpmLimit: number | undefined;
  keyTpmLimit: number | undefined;
  keyTokensPerDayLimit: number | undefined;
  teamTpmLimit: number | undefined;
  teamDailyTokenLimit: number | undefined;
}

export const MIN_MASTER_KEY_LENGTH = 32;

/** The only reader of process.env in the control plane. */
export function loadConfig(env: Record<string, string | undefined> = process.env): ControlPlaneConfig {
  const masterKey = envOptional(env, "PROXY_MASTER_KEY");
  if (!masterKey) {
    throw new ConfigError(
      "PROXY_MASTER_KEY is required: set it to a random secret of at least 32 characters (e.g. `openssl rand -base64 32`), or use `pnpm start`, which generates one",
    );
  }
  if (masterKey.length < MIN_MASTER_KEY_LENGTH) {
    throw new ConfigError(`PROXY_MASTER_KEY must be at least ${MIN_MASTER_KEY_LENGTH} characters long (got ${masterKey.length})`);
  }
  const databaseUrl = envOptional(env, "DATABASE_URL");
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError("DATABASE_URL must be a postgres:// or postgresql:// URL");
  }
  const schema = envString(env, "DATABASE_SCHEMA", "public");
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new ConfigError(`DATABASE_SCHEMA must be a lower-case SQL identifier, got ${describeValue(schema)}`);
  }
  const logLevel = envString(env, "LOG_LEVEL", "info");
  if (!["trace", "debug", "info", "warn", "error", "fatal", "silent"].includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent, got ${describeValue(logLevel)}`);
  }
  return {
    host: envString(env, "HOST", "0.0.0.0"),
    port: envPort(env, "PORT", 8000),
    grpcPort: envPort(env, "GRPC_PORT", 50051),
    masterKey,
    databaseUrl,
    databaseSchema: schema,
    dataDir: resolve(envString(env, "DATA_DIR", ".data/control-plane")),
    logLevel,
    heartbeatIntervalMs: envDurationMs(env, "SYNC_HEARTBEAT_INTERVAL", 5_000),
    maxBodyBytes: 1024 * 1024,
    maxBulkBodyBytes: 16 * 1024 * 1024,
    gatewayOfflineAfterMs: envDurationMs(env, "GATEWAY_OFFLINE_AFTER", 15_000),
    changeLogRetentionMs: envDurationMs(env, "CHANGE_LOG_RETENTION", 7 * 24 * 3_600_000),
    compactionIntervalMs: envDurationMs(env, "CHANGE_LOG_COMPACTION_INTERVAL", 60_000),
    syncDebounceMs: envDurationMs(env, "SYNC_DEBOUNCE", 2),
    grpcTls: loadGrpcTls(env),
    requestTimeoutMs: envDurationMs(env, "REQUEST_TIMEOUT", 60_000),
    grpcSessions: {
      authTimeoutMs: envDurationMs(env, "GRPC_AUTH_TIMEOUT", DEFAULT_SESSION_LIMITS.authTimeoutMs),
      maxSessions: envInt(env, "GRPC_MAX_SESSIONS", DEFAULT_SESSION_LIMITS.maxSessions, 1, 1_000_000),
      maxPerAddress: envInt(env, "GRPC_MAX_SESSIONS_PER_CLIENT", DEFAULT_SESSION_LIMITS.maxPerAddress, 1, 1_000_000),
    },
    bruteForce: {
      enabled: envEnum(env, "BRUTE_FORCE_PROTECTION", ["on", "off"], "on") === "on",
      maxFailedAttempts: envInt(env, "BRUTE_FORCE_MAX_FAILED_ATTEMPTS", 5, 1, 1_000_000),
      ttlMs: envDurationMs(env, "BRUTE_FORCE_TTL", 900_000),
    },
    sessions: {
      idleMs: envDurationMs(env, "SESSION_IDLE_TIMEOUT", 30 * 60_000),
      maxAgeMs: envDurationMs(env, "SESSION_MAX_AGE", 12 * 3_600_000),
    },
    quota: {
      defaults: {
        keyRpmLimit: envOptionalInt(env, "DEFAULT_KEY_RPM_LIMIT", 0, Number.MAX_SAFE_INTEGER),
        keyTpmLimit: envOptionalInt(env, "DEFAULT_KEY_TPM_LIMIT", 0, Number.MAX_SAFE_INTEGER),
        keyTokensPerDayLimit: envOptionalInt(env, "DEFAULT_KEY_TOKENS_PER_DAY_LIMIT", 0, Number.MAX_SAFE_INTEGER),
        teamTpmLimit: envOptionalInt(env, "DEFAULT_TEAM_TPM_LIMIT", 0, Number.MAX_SAFE_INTEGER),
        teamDailyTokenLimit: envOptionalInt(env, "DEFAULT_TEAM_DAILY_TOKEN_LIMIT", 0, Number.MAX_SAFE_INTEGER),
      },
      leaseTtlMs: envDurationMs(env, "QUOTA_LEASE_TTL", 30_000),
    },
    alerts: {
      webhookUrl: envUrl(env, "ALERT_WEBHOOK_URL"),
      webhookSecret: envOptional(env, "ALERT_WEBHOOK_SECRET"),
    },
  };
}

function readPem(env: Record<string, string | undefined>, name: string): Buffer | undefined {
  const path = envOptional(env, name);
  if (!path) return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${name} names a file that cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
}

/** GRPC_TLS_CERT_FILE + GRPC_TLS_KEY_FILE turn on TLS; GRPC_TLS_CLIENT_CA_FILE requires client certificates (mTLS). */
function loadGrpcTls(env: Record<string, string | undefined>): ControlPlaneConfig["grpcTls"] {
  const cert = readPem(env, "GRPC_TLS_CERT_FILE");
  const key = readPem(env, "GRPC_TLS_KEY_FILE");
  const clientCa = readPem(env, "GRPC_TLS_CLIENT_CA_FILE");
  if (!cert && !key) {
    if (clientCa) throw new ConfigError("GRPC_TLS_CLIENT_CA_FILE needs GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE");
    return undefined;
  }
  if (!cert) throw new ConfigError("GRPC_TLS_KEY_FILE is set but GRPC_TLS_CERT_FILE is not: set both to serve gRPC over TLS");
  if (!key) throw new ConfigError("GRPC_TLS_CERT_FILE is set but GRPC_TLS_KEY_FILE is not: set both to serve gRPC over TLS");
  return { cert, key, clientCa };
}
