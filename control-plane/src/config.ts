import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { DEFAULT_SESSION_LIMITS, type SessionLimits } from "./grpc-session-limits.js";
import {
  ConfigError,
  describeValue,
  envBool,
  mcpSecretsFromEnv,
  envDurationMs,
  envInt,
  envOptional,
  envOptionalInt,
  envPort,
  envString,
  envUrl,
  parseTrustedProxies,
  resolveSecretFiles,
} from "@tollgate/shared";

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
  /**
   * SYNC_STREAM_LIVENESS: take an open sync stream whose HTTP/2 connection answers pings as
   * its gateway's liveness (gateways then send no heartbeat calls). Turn it off when a proxy
   * that ends HTTP/2 (a service-mesh sidecar, an L7 balancer) sits between the gateways and
   * the control plane: it would answer the pings itself.
   */
  streamLiveness?: boolean;
  /** Change-log entries younger than this are kept; older ones are compacted away. */
  changeLogRetentionMs: number;
  /** How often compaction runs. */
  compactionIntervalMs: number;
  /** Wait after a change before reading the log, to batch bursts into one push. */
  syncDebounceMs: number;
  /** How long a key write waits, by default, for the organization's connected gateways to apply it (read-your-writes); 0: not at all. */
  waitForGatewaysDefaultMs: number;
  /** SYNC_TRACE=true: stamp each stage of every key change on stderr (bench/README.md, "Where the time goes"). */
  syncTrace?: boolean;
  /**
   * TRUSTED_PROXIES: addresses and CIDRs of proxies (an ingress, a load balancer) whose
   * X-Forwarded-For names the client for per-IP blocking and audit. Empty: never believed.
   */
  trustedProxies?: string[];
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
  /** Google (or any OpenID Connect) sign-in; undefined when GOOGLE_CLIENT_ID is unset, and /auth/* answers "SSO is off". */
  sso: SsoConfig | undefined;
  /** Emails whose users are organization admins (ADMIN_EMAILS), lower-cased. */
  adminEmails: string[];
  alerts: {
    /** Budget alerts are POSTed here as JSON; unset: recorded in the audit log only. */
    webhookUrl: string | undefined;
    /** Signs each delivery (X-Tollgate-Signature: sha256=HMAC of the body). */
    webhookSecret: string | undefined;
  };
  /** MCP_SECRET_* values, only to list an MCP server's tools for the dashboard (gateways hold their own). */
  mcpSecrets: ReadonlyMap<string, string>;
}

export interface QuotaDefaultsConfig {
  keyRpmLimit: number | undefined;
  keyTpmLimit: number | undefined;
  keyTokensPerDayLimit: number | undefined;
  teamTpmLimit: number | undefined;
  teamDailyTokenLimit: number | undefined;
}

export interface SsoConfig {
  /** OIDC_ISSUER: discovery starts at `<issuer>/.well-known/openid-configuration`. */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** AUTH_BASE_URL without a trailing slash; the redirect URI is `<baseUrl>/auth/callback`. */
  baseUrl: string;
  redirectUri: string;
  /** SSO_ALLOWED_DOMAINS: lower-case email domains that may sign in; empty = any verified email. */
  allowedDomains: string[];
  /** SSO_DOMAIN_ORGS: `domain=org_…` pairs; a domain not listed lands in `defaultOrgId`. */
  orgByDomain: Record<string, string>;
  /** SSO_DEFAULT_ORG: unset = the default organization. */
  defaultOrgId: string | undefined;
  /** SSO_DEFAULT_TEAM: the team (id or name, in the user's organization) of new users; unset = none. */
  defaultTeam: string | undefined;
  /** SSO_ADMIN_GROUP: members of this IdP group (the `groups` claim) sign in as admins. */
  adminGroup: string | undefined;
  /** Limits of each `sso` key (SSO_KEY_RPM_LIMIT, SSO_KEY_TPM_LIMIT, SSO_KEY_TOKENS_PER_DAY_LIMIT, SSO_KEY_BUDGET_USD, SSO_KEY_EXPIRES_IN). */
  keyDefaults: {
    rpmLimit: number | undefined;
    tpmLimit: number | undefined;
    tokensPerDayLimit: number | undefined;
    budgetUsd: number | undefined;
    expiresInMs: number | undefined;
  };
  /** How long a sign-in may take between /auth/login and /auth/callback. */
  stateTtlMs: number;
  /** SSO_LOGIN_RATE_LIMIT: sign-ins one client address may start per minute (each costs a row and a provider round trip). */
  loginsPerMinute: number;
}

export const GOOGLE_ISSUER = "https://accounts.google.com";
export const MIN_MASTER_KEY_LENGTH = 32;

/**
 * The secret settings: each may instead be given as NAME_FILE, the path of a
 * file holding it (MCP_SECRET_<NAME>_FILE too); both set is a ConfigError.
 */
export const CONTROL_PLANE_SECRET_VARIABLES = [
  "PROXY_MASTER_KEY",
  "DATABASE_URL",
  "GOOGLE_CLIENT_SECRET",
  "ALERT_WEBHOOK_SECRET",
] as const;

/** The only reader of process.env in the control plane. */
export function loadConfig(rawEnv: Record<string, string | undefined> = process.env): ControlPlaneConfig {
  const env = resolveSecretFiles(rawEnv, CONTROL_PLANE_SECRET_VARIABLES);
  const masterKey = envOptional(env, "PROXY_MASTER_KEY");
  if (!masterKey) {
    throw new ConfigError(
      "PROXY_MASTER_KEY (or PROXY_MASTER_KEY_FILE) is required: set it to a random secret of at least 32 characters (e.g. `openssl rand -base64 32`), or use `pnpm start`, which generates one",
    );
  }
  if (masterKey.length < MIN_MASTER_KEY_LENGTH) {
    throw new ConfigError(
      `PROXY_MASTER_KEY must be at least ${MIN_MASTER_KEY_LENGTH} characters long (got ${masterKey.length})`,
    );
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
    throw new ConfigError(
      `LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent, got ${describeValue(logLevel)}`,
    );
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
    streamLiveness: envBool(env, "SYNC_STREAM_LIVENESS", true),
    changeLogRetentionMs: envDurationMs(env, "CHANGE_LOG_RETENTION", 7 * 24 * 3_600_000),
    compactionIntervalMs: envDurationMs(env, "CHANGE_LOG_COMPACTION_INTERVAL", 60_000),
    syncDebounceMs: envDurationMs(env, "SYNC_DEBOUNCE", 0),
    waitForGatewaysDefaultMs: envDurationMs(env, "WAIT_FOR_GATEWAYS_DEFAULT", 2_000),
    syncTrace: envBool(env, "SYNC_TRACE", false),
    grpcTls: loadGrpcTls(env),
    requestTimeoutMs: envDurationMs(env, "REQUEST_TIMEOUT", 60_000),
    grpcSessions: {
      authTimeoutMs: envDurationMs(env, "GRPC_AUTH_TIMEOUT", DEFAULT_SESSION_LIMITS.authTimeoutMs),
      maxSessions: envInt(env, "GRPC_MAX_SESSIONS", DEFAULT_SESSION_LIMITS.maxSessions, 1, 1_000_000),
      maxPerAddress: envInt(env, "GRPC_MAX_SESSIONS_PER_CLIENT", DEFAULT_SESSION_LIMITS.maxPerAddress, 1, 1_000_000),
    },
    trustedProxies: parseTrustedProxies(envOptional(env, "TRUSTED_PROXIES")),
    bruteForce: {
      enabled: envBool(env, "BRUTE_FORCE_PROTECTION", true),
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
    sso: loadSso(env),
    adminEmails: emailList(env, "ADMIN_EMAILS"),
    alerts: {
      webhookUrl: envUrl(env, "ALERT_WEBHOOK_URL"),
      webhookSecret: envOptional(env, "ALERT_WEBHOOK_SECRET"),
    },
    mcpSecrets: mcpSecretsFromEnv(env),
  };
}

function readPem(env: Record<string, string | undefined>, name: string): Buffer | undefined {
  const path = envOptional(env, name);
  if (!path) return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(
      `${name} names a file that cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
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
  if (!cert)
    throw new ConfigError("GRPC_TLS_KEY_FILE is set but GRPC_TLS_CERT_FILE is not: set both to serve gRPC over TLS");
  if (!key)
    throw new ConfigError("GRPC_TLS_CERT_FILE is set but GRPC_TLS_KEY_FILE is not: set both to serve gRPC over TLS");
  return { cert, key, clientCa };
}

function list(env: Record<string, string | undefined>, name: string): string[] {
  return (envOptional(env, name) ?? "")
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const ORG_ID = /^org_[0-9a-z]{26}$/;

function emailList(env: Record<string, string | undefined>, name: string): string[] {
  return list(env, name).map((email) => {
    const lower = email.toLowerCase();
    if (!/^[^@\s]+@[^@\s]+$/.test(lower))
      throw new ConfigError(`${name} must be a comma-separated list of email addresses, got ${JSON.stringify(email)}`);
    return lower;
  });
}

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/**
 * SSO is on when GOOGLE_CLIENT_ID is set, and then needs GOOGLE_CLIENT_SECRET and
 * AUTH_BASE_URL too. Plain http is refused for the issuer and the base URL except on
 * loopback: the ID token and the key page must not cross a network in the clear.
 */
function loadSso(env: Record<string, string | undefined>): SsoConfig | undefined {
  const clientId = envOptional(env, "GOOGLE_CLIENT_ID");
  const clientSecret = envOptional(env, "GOOGLE_CLIENT_SECRET");
  const baseUrl = envUrl(env, "AUTH_BASE_URL");
  if (!clientId) {
    if (clientSecret || baseUrl) {
      throw new ConfigError(
        "GOOGLE_CLIENT_SECRET or AUTH_BASE_URL is set but GOOGLE_CLIENT_ID is not: set all three to turn on SSO, or none",
      );
    }
    return undefined;
  }
  if (!clientSecret)
    throw new ConfigError(
      "GOOGLE_CLIENT_ID is set but GOOGLE_CLIENT_SECRET is not: set both (and AUTH_BASE_URL) to turn on SSO",
    );
  if (!baseUrl)
    throw new ConfigError(
      "GOOGLE_CLIENT_ID is set but AUTH_BASE_URL is not: set it to the URL users reach the control plane at, e.g. https://proxy.internal",
    );
  const issuer = envUrl(env, "OIDC_ISSUER", GOOGLE_ISSUER)!;
  for (const [name, value] of [
    ["OIDC_ISSUER", issuer],
    ["AUTH_BASE_URL", baseUrl],
  ] as const) {
    const url = new URL(value);
    if (url.protocol !== "https:" && !isLoopback(url.hostname)) {
      throw new ConfigError(
        `${name} must be an https URL (plain http is only accepted on loopback), got ${JSON.stringify(value)}`,
      );
    }
  }
  const allowedDomains = list(env, "SSO_ALLOWED_DOMAINS").map((d) => d.toLowerCase());
  for (const d of allowedDomains) {
    if (!DOMAIN.test(d))
      throw new ConfigError(
        `SSO_ALLOWED_DOMAINS must be a comma-separated list of domains such as example.com, got ${JSON.stringify(d)}`,
      );
  }
  const orgByDomain: Record<string, string> = {};
  for (const pair of list(env, "SSO_DOMAIN_ORGS")) {
    const [domain, org] = pair.split("=").map((v) => v.trim());
    if (!domain || !org || !DOMAIN.test(domain.toLowerCase()) || !ORG_ID.test(org)) {
      throw new ConfigError(
        `SSO_DOMAIN_ORGS must be a comma-separated list of domain=org_… pairs, got ${JSON.stringify(pair)}`,
      );
    }
    orgByDomain[domain.toLowerCase()] = org;
  }
  const defaultOrgId = envOptional(env, "SSO_DEFAULT_ORG");
  if (defaultOrgId && !ORG_ID.test(defaultOrgId))
    throw new ConfigError(`SSO_DEFAULT_ORG must be an org_… id, got ${JSON.stringify(defaultOrgId)}`);
  const budget = envOptional(env, "SSO_KEY_BUDGET_USD");
  const budgetUsd = budget === undefined ? undefined : Number(budget);
  if (budgetUsd !== undefined && (!Number.isFinite(budgetUsd) || budgetUsd < 0)) {
    throw new ConfigError(`SSO_KEY_BUDGET_USD must be a number of dollars, 0 or more, got ${JSON.stringify(budget)}`);
  }
  const expiresIn = envOptional(env, "SSO_KEY_EXPIRES_IN");
  return {
    issuer,
    clientId,
    clientSecret,
    baseUrl,
    redirectUri: `${baseUrl}/auth/callback`,
    allowedDomains,
    orgByDomain,
    defaultOrgId,
    defaultTeam: envOptional(env, "SSO_DEFAULT_TEAM"),
    adminGroup: envOptional(env, "SSO_ADMIN_GROUP"),
    keyDefaults: {
      rpmLimit: envOptionalInt(env, "SSO_KEY_RPM_LIMIT", 0, Number.MAX_SAFE_INTEGER),
      tpmLimit: envOptionalInt(env, "SSO_KEY_TPM_LIMIT", 0, Number.MAX_SAFE_INTEGER),
      tokensPerDayLimit: envOptionalInt(env, "SSO_KEY_TOKENS_PER_DAY_LIMIT", 0, Number.MAX_SAFE_INTEGER),
      budgetUsd,
      expiresInMs: expiresIn === undefined ? undefined : envDurationMs(env, "SSO_KEY_EXPIRES_IN", 0),
    },
    stateTtlMs: 10 * 60_000,
    loginsPerMinute: envInt(env, "SSO_LOGIN_RATE_LIMIT", 60, 1, 1_000_000),
  };
}
