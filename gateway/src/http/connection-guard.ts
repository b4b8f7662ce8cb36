import type { Server } from "node:http";
import type { BlockList, Socket } from "node:net";
import type { Logger } from "@tollgate/shared";
import { Counter, Gauge, type Registry } from "prom-client";
import type { ConnectionLimits } from "../config/connection-limits.js";

/** Connections the status port accepts at once: enough for scrapers and probes, never the client flood. */
export const STATUS_MAX_CONNECTIONS = 64;

const REFUSAL_LOG_INTERVAL_MS = 10_000;

export interface ConnectionGuard {
  /** Open client connections now. */
  readonly open: number;
}

export function guardConnections(
  server: Server,
  options: {
    limits: ConnectionLimits;
    logger: Logger;
    registry: Registry;
    trustedProxies: BlockList | null;
    now?: () => number;
  },
): ConnectionGuard {
  const { limits, logger, trustedProxies } = options;
  const now = options.now ?? Date.now;
  server.keepAliveTimeout = limits.idleTimeoutMs;
  server.headersTimeout = Math.min(server.headersTimeout || limits.headersTimeoutMs, limits.headersTimeoutMs);
  // Node requires requestTimeout ≥ headersTimeout when both are set.
  if (server.requestTimeout > 0 && server.requestTimeout < server.headersTimeout)
    server.headersTimeout = server.requestTimeout;

  const perAddress = new Map<string, number>();
  let open = 0;
  const refused = new Counter({
    name: "tollgate_gateway_connections_refused_total",
    help: "Client connections closed on accept: over MAX_CONNECTIONS (total) or MAX_CONNECTIONS_PER_CLIENT (per_address)",
    labelNames: ["reason"] as const,
    registers: [options.registry],
  });
  new Gauge({
    name: "tollgate_gateway_client_connections",
    help: "Open client-port connections",
    registers: [options.registry],
    collect() {
      this.set(open);
    },
  });

  let lastLog = Number.NEGATIVE_INFINITY;
  let unlogged = 0;
  const noteRefusal = (reason: "total" | "per_address", address: string | undefined) => {
    refused.inc({ reason });
    unlogged++;
    const t = now();
    if (t - lastLog < REFUSAL_LOG_INTERVAL_MS) return;
    lastLog = t;
    logger.warn(
      {
        reason,
        address,
        refusedSinceLastLog: unlogged,
        open,
        maxConnections: limits.maxConnections,
        maxPerAddress: limits.maxPerAddress,
      },
      "refusing client connections: connection limit reached (MAX_CONNECTIONS / MAX_CONNECTIONS_PER_CLIENT)",
    );
    unlogged = 0;
  };

  // Connections that have not sent a request yet, oldest first: at the total bound, a new
  // connection replaces the oldest of these rather than being refused, so a flood of idle
  // sockets cannot keep real clients out (they send their request as soon as they connect).
  const silent = new Set<Socket>();
  const releases = new Map<Socket, () => void>();
  server.on("request", (req: { socket: Socket }) => {
    silent.delete(req.socket);
  });
  server.on("connection", (socket: Socket) => {
    const address = socket.remoteAddress ?? "unknown";
    const exempt =
      trustedProxies !== null &&
      socket.remoteAddress !== undefined &&
      trustedProxies.check(socket.remoteAddress, socket.remoteFamily === "IPv6" ? "ipv6" : "ipv4");
    const count = (perAddress.get(address) ?? 0) + 1;
    if (!exempt && count > limits.maxPerAddress) {
      noteRefusal("per_address", address);
      socket.destroy();
      return;
    }
    if (open >= limits.maxConnections) {
      const oldest = silent.values().next().value as Socket | undefined;
      if (oldest === undefined) {
        noteRefusal("total", address);
        socket.destroy();
        return;
      }
      noteRefusal("total", oldest.remoteAddress);
      // Released now, not at its 'close' event: the bound holds at every moment.
      releases.get(oldest)?.();
      oldest.destroy();
    }
    perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
    open++;
    silent.add(socket);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      releases.delete(socket);
      open--;
      silent.delete(socket);
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left <= 0) perAddress.delete(address);
      else perAddress.set(address, left);
    };
    releases.set(socket, release);
    socket.once("close", release);
  });
  // A backstop far above the bound, for accept() storms faster than the handler above.
  server.maxConnections = limits.maxConnections * 2 + 64;
  server.on("drop", (data?: { remoteAddress?: string }) => noteRefusal("total", data?.remoteAddress));
  return {
    get open() {
      return open;
    },
  };
}
