import { resolve } from "node:path";
import { ConfigError, envDurationMs, envOptional, envPort, envString } from "@tollgate/shared";

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
    throw new ConfigError(`DATABASE_SCHEMA must be a lower-case SQL identifier, got ${JSON.stringify(schema)}`);
  }
  const logLevel = envString(env, "LOG_LEVEL", "info");
  if (!["trace", "debug", "info", "warn", "error", "fatal", "silent"].includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent, got ${JSON.stringify(logLevel)}`);
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
  };
}
