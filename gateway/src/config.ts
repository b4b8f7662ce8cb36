import { hostname } from "node:os";
import { resolve } from "node:path";
import {
  ConfigError,
  envDurationMs,
  envEnum,
  envOptional,
  envPort,
  envRequired,
  envString,
  envUrl,
} from "@tollgate/shared";

/** Which upstream serves client traffic. */
export type ProviderConfig =
  | { kind: "openai"; baseUrl: string; apiKey: string | undefined }
  | { kind: "mock" };

export interface GatewayConfig {
  /** gRPC endpoint of the control plane (HTTP/2). */
  controlPlaneUrl: string;
  gatewayToken: string;
  gatewayName: string;
  /** Directory holding gateway.db; created when missing. */
  dataDir: string;
  host: string;
  /** Client API port; 0 picks a free one. */
  port: number;
  /** /metrics, /healthz, /readyz port; 0 picks a free one. */
  statusPort: number;
  provider: ProviderConfig;
  upstreamTimeoutMs: number;
  maxBodyBytes: number;
  logLevel: string;
  /** How long stop() lets in-flight requests finish before cutting them. */
  shutdownGraceMs: number;
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export const DEFAULT_CONTROL_PLANE_URL = "http://127.0.0.1:50051";
export const DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1";
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

const BYTE_UNITS: Record<string, number> = { "": 1, b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** Parses `4194304`, `512KiB`, `4MiB` or `1GiB` into bytes. */
export function parseBytes(value: string): number | undefined {
  const m = /^(\d+)\s*(b|kib|mib|gib)?$/i.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * (BYTE_UNITS[(m[2] ?? "").toLowerCase()] ?? NaN);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * Builds the gateway config from environment variables. The only place that
 * reads them; a wrong value throws a ConfigError naming the variable.
 */
export function loadConfig(env: Env): GatewayConfig {
  const controlPlaneUrl = envUrl(env, "CONTROL_PLANE_URL", DEFAULT_CONTROL_PLANE_URL) ?? DEFAULT_CONTROL_PLANE_URL;
  const gatewayToken = envRequired(
    env,
    "GATEWAY_TOKEN",
    "create a gateway token on the control plane with POST /internal/gateway-tokens (Authorization: Bearer $PROXY_MASTER_KEY) and pass it to the gateway",
  );

  const openaiApiKey = envOptional(env, "OPENAI_API_KEY");
  const openaiBaseUrl = envUrl(env, "OPENAI_BASE_URL");
  const provider: ProviderConfig =
    openaiApiKey === undefined && openaiBaseUrl === undefined
      ? { kind: "mock" }
      : { kind: "openai", baseUrl: openaiBaseUrl ?? DEFAULT_OPENAI_BASE_URL, apiKey: openaiApiKey };

  const upstreamTimeoutMs = envDurationMs(env, "UPSTREAM_TIMEOUT", 600_000);
  if (upstreamTimeoutMs <= 0) throw new ConfigError(`UPSTREAM_TIMEOUT must be positive, got ${JSON.stringify(env.UPSTREAM_TIMEOUT)}`);

  let maxBodyBytes = DEFAULT_MAX_BODY_BYTES;
  const rawMaxBody = envOptional(env, "MAX_BODY_BYTES");
  if (rawMaxBody !== undefined) {
    const parsed = parseBytes(rawMaxBody);
    if (parsed === undefined) {
      throw new ConfigError(
        `MAX_BODY_BYTES must be a positive size in bytes such as 4194304 or 4MiB, got ${JSON.stringify(rawMaxBody)}`,
      );
    }
    maxBodyBytes = parsed;
  }

  return {
    controlPlaneUrl,
    gatewayToken,
    gatewayName: envString(env, "GATEWAY_NAME", hostname()),
    dataDir: resolve(envString(env, "DATA_DIR", "./.data/gateway")),
    host: envString(env, "HOST", "0.0.0.0"),
    port: envPort(env, "PORT", 8080),
    statusPort: envPort(env, "STATUS_PORT", 8081),
    provider,
    upstreamTimeoutMs,
    maxBodyBytes,
    logLevel: envEnum(env, "LOG_LEVEL", LOG_LEVELS, "info"),
    shutdownGraceMs: 10_000,
  };
}
