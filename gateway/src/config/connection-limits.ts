import { ConfigError, envDurationMs, envInt } from "@tollgate/shared";

type Env = Record<string, string | undefined>;

/**
 * Bounds on the client port's TCP connections. Without them a flood of idle connections
 * reaches the process's file limit: accept() then fails for everyone, the status port
 * included, and nothing is logged. With them the flood is refused at the door (counted,
 * logged at most once per interval), idle connections close well before a minute, and the
 * status port, a server of its own, keeps answering.
 */
export interface ConnectionLimits {
  /**
   * MAX_CONNECTIONS: open client connections at once. Past it, a new connection replaces the
   * oldest one that has not sent a request yet, or is closed when every one has.
   */
  maxConnections: number;
  /** MAX_CONNECTIONS_PER_CLIENT: open connections from one address (trusted proxies exempt). */
  maxPerAddress: number;
  /** CLIENT_IDLE_TIMEOUT: a kept-alive connection with no request for this long is closed. */
  idleTimeoutMs: number;
  /** HEADERS_TIMEOUT: a connection that has not sent a request's headers within this is closed. */
  headersTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 4096,
  maxPerAddress: 256,
  idleTimeoutMs: 30_000,
  headersTimeoutMs: 20_000,
};

/** MAX_CONNECTIONS, MAX_CONNECTIONS_PER_CLIENT, CLIENT_IDLE_TIMEOUT and HEADERS_TIMEOUT. */
export function loadConnectionLimits(env: Env): ConnectionLimits {
  const d = DEFAULT_CONNECTION_LIMITS;
  const idleTimeoutMs = envDurationMs(env, "CLIENT_IDLE_TIMEOUT", d.idleTimeoutMs);
  if (idleTimeoutMs < 1_000 || idleTimeoutMs > 600_000)
    throw new ConfigError("CLIENT_IDLE_TIMEOUT must be between 1s and 10m");
  const headersTimeoutMs = envDurationMs(env, "HEADERS_TIMEOUT", d.headersTimeoutMs);
  if (headersTimeoutMs < 1_000 || headersTimeoutMs > 600_000)
    throw new ConfigError("HEADERS_TIMEOUT must be between 1s and 10m");
  return {
    maxConnections: envInt(env, "MAX_CONNECTIONS", d.maxConnections, 1, 1_000_000),
    maxPerAddress: envInt(env, "MAX_CONNECTIONS_PER_CLIENT", d.maxPerAddress, 1, 1_000_000),
    idleTimeoutMs,
    headersTimeoutMs,
  };
}
