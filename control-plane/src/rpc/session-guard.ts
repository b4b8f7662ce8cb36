import type http2 from "node:http2";
import type { Logger } from "@tollgate/shared";
import { Counter, Gauge, type Registry } from "prom-client";
import type { SessionLimits } from "../grpc-session-limits.js";

const REFUSAL_LOG_INTERVAL_MS = 10_000;

export interface SessionGuard {
  /** Call when an RPC on `session` presented an accepted gateway token. */
  authenticated(session: http2.ServerHttp2Session | undefined): void;
  readonly open: number;
}

/** Holds the gRPC server's HTTP/2 sessions to `limits` (why: see grpc-session-limits.ts). */
export function guardSessions(
  server: http2.Http2Server | http2.Http2SecureServer,
  options: { limits: SessionLimits; logger: Logger; registry: Registry },
): SessionGuard {
  const { limits, logger } = options;
  const timers = new Map<http2.ServerHttp2Session, NodeJS.Timeout>();
  const perAddress = new Map<string, number>();
  let open = 0;
  const closed = new Counter({
    name: "tollgate_cp_grpc_sessions_refused_total",
    help: "gRPC sessions closed by the control plane: over GRPC_MAX_SESSIONS (total) or GRPC_MAX_SESSIONS_PER_CLIENT (per_address), or not authenticated within GRPC_AUTH_TIMEOUT (auth_timeout)",
    labelNames: ["reason"] as const,
    registers: [options.registry],
  });
  new Gauge({
    name: "tollgate_cp_grpc_sessions",
    help: "Open gRPC (HTTP/2) sessions",
    registers: [options.registry],
    collect() {
      this.set(open);
    },
  });
  let lastLog = Number.NEGATIVE_INFINITY;
  let unlogged = 0;
  const note = (reason: "total" | "per_address" | "auth_timeout", address: string | undefined) => {
    closed.inc({ reason });
    unlogged++;
    const now = Date.now();
    if (now - lastLog < REFUSAL_LOG_INTERVAL_MS) return;
    lastLog = now;
    logger.warn(
      { reason, address, closedSinceLastLog: unlogged, open, limits },
      "closing gRPC sessions: unauthenticated too long or over the session limits",
    );
    unlogged = 0;
  };

  // Over the total, the kernel-level accept is refused before any HTTP/2 state exists.
  server.maxConnections = limits.maxSessions;
  server.on("drop", (data?: { remoteAddress?: string }) => note("total", data?.remoteAddress));
  server.on("session", (session: http2.ServerHttp2Session) => {
    const address = session.socket?.remoteAddress ?? "unknown";
    const count = (perAddress.get(address) ?? 0) + 1;
    if (count > limits.maxPerAddress) {
      note("per_address", address);
      session.destroy();
      return;
    }
    perAddress.set(address, count);
    open++;
    const timer = setTimeout(() => {
      timers.delete(session);
      note("auth_timeout", address);
      session.destroy();
    }, limits.authTimeoutMs);
    timer.unref();
    timers.set(session, timer);
    session.once("close", () => {
      open--;
      clearTimeout(timers.get(session));
      timers.delete(session);
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left <= 0) perAddress.delete(address);
      else perAddress.set(address, left);
    });
  });
  return {
    authenticated(session) {
      if (!session) return;
      const timer = timers.get(session);
      if (timer === undefined) return;
      clearTimeout(timer);
      timers.delete(session);
    },
    get open() {
      return open;
    },
  };
}
