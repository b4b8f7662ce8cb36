import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ConfigError, type Logger, enableSyncTrace } from "@tollgate/shared";
import type { GatewayConfig } from "./config.js";
import { createAppContext, type AppContext, type ContextOverrides } from "./context.js";
import { createClientHandler } from "./http/1-route-table.js";
import { GatewayResponse } from "./http/gateway-response.js";
import { createStatusHandler } from "./http/status.js";
import { hardenClientServer } from "./http/0-malformed.js";
import { guardConnections, STATUS_MAX_CONNECTIONS } from "./http/connection-guard.js";
import { compileTrustedProxies, DEFAULT_LOG_RETENTION_MS } from "./config.js";
import { DEFAULT_CONNECTION_LIMITS } from "./config/connection-limits.js";
import { ControlPlaneConnection } from "./background/control-plane-connection.js";
import { QuotaUpkeep } from "./background/quota-upkeep.js";
import { LogRetention } from "./background/log-retention.js";
import { SyncClient, type SyncClientOptions } from "./background/sync-loop.js";
import { META } from "./db/meta-repository.js";

export { loadConfig, type GatewayConfig, type ProviderConfig } from "./config.js";
export type { AppContext, ContextOverrides } from "./context.js";
export type { Clock } from "./clock.js";

/** Ports actually bound (meaningful when the config asked for port 0). */
export interface GatewayAddresses {
  host: string;
  port: number;
  statusPort: number;
}

export interface Gateway {
  readonly context: AppContext;
  /** Resolves once both HTTP servers listen; the sync client runs in the background. */
  start(): Promise<GatewayAddresses>;
  /** Stops serving, the sync client, and flushes the logs. Safe to call twice. */
  stop(): Promise<void>;
}

export interface GatewayOptions extends ContextOverrides {
  sync?: SyncClientOptions;
}

export const AUTH_DISABLED_WARNING =
  "CLIENT AUTHENTICATION IS DISABLED (DISABLE_AUTH=true): anyone who can reach this port can use the upstream credentials. Never use this in production.";
/** How often the DISABLE_AUTH warning is repeated while the gateway runs. */
const AUTH_DISABLED_WARNING_INTERVAL_MS = 10 * 60_000;

/** Logs the DISABLE_AUTH warning now and every `intervalMs`; returns the function that stops it. */
export function startAuthDisabledWarnings(
  logger: Logger,
  port: number,
  intervalMs = AUTH_DISABLED_WARNING_INTERVAL_MS,
): () => void {
  const warn = () => logger.warn({ disableAuth: true, port }, AUTH_DISABLED_WARNING);
  warn();
  const timer = setInterval(warn, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Listens; a port that is taken or forbidden is reported against its variable. */
function listen(server: Server, port: number, host: string, variable: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE" || err.code === "EACCES" || err.code === "EADDRNOTAVAIL") {
        reject(
          new ConfigError(
            `${variable}=${port} cannot be used on HOST=${host} (${err.code}): pick another port or stop what holds it`,
          ),
        );
      } else {
        reject(err);
      }
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Closes a server, letting in-flight requests finish for up to `graceMs`. */
function close(server: Server, graceMs: number): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/**
 * Builds a gateway: opens its SQLite cache (serving from it at once when it
 * holds a snapshot), and on start() listens on the client and status ports and
 * subscribes to the control plane.
 */
export function createGateway(config: GatewayConfig, options: GatewayOptions = {}): Gateway {
  if (config.syncTrace) enableSyncTrace();
  const ctx = createAppContext(config, options);
  const logger: Logger = ctx.logger;
  const connection = new ControlPlaneConnection({
    url: config.controlPlaneUrl,
    token: config.gatewayToken,
    tls: config.controlPlaneTls,
    gatewayId: ctx.gatewayId,
    pingIntervalMs: options.sync?.pingIntervalMs,
    compression: config.syncCompression ?? false,
  });
  const sync = new SyncClient(
    {
      connection,
      receiver: {
        beginSnapshot: (head) => ctx.keyCache.beginSnapshot(head),
        commitSnapshot: (s) => ctx.keyCache.commitSnapshot(s),
        applyChanges: (c) => ctx.keyCache.applyChanges(c),
        applySettings: (s) => ctx.quota.applySettings(s),
      },
      state: ctx.syncState,
      metrics: ctx.metrics,
      logger,
      clock: ctx.clock,
      // Through the log writer's thread: the event loop never waits for SQLite's write lock.
      lastContact: {
        get open() {
          return ctx.db.db.open;
        },
        save: (ms) => ctx.logWriter.setMeta(META.lastContactAtMs, String(ms)),
      },
      gatewayId: ctx.gatewayId,
      gatewayName: config.gatewayName,
      controlPlaneUrl: config.controlPlaneUrl,
      heartbeatIntervalMs: config.syncHeartbeatIntervalMs,
      keyCount: () => ctx.keyIndex.size,
    },
    options.sync,
  );
  const quotaUpkeep = new QuotaUpkeep({ quota: ctx.quota, rpc: connection.quotaRpc(), logger });
  const retentionMs = config.logRetentionMs === undefined ? DEFAULT_LOG_RETENTION_MS : config.logRetentionMs;
  const retention =
    retentionMs === null
      ? undefined
      : new LogRetention({ logWriter: ctx.logWriter, db: ctx.db.db, logger, now: () => ctx.clock.now(), retentionMs });
  const clientServer = createServer(
    {
      keepAliveTimeout: (config.connectionLimits ?? DEFAULT_CONNECTION_LIMITS).idleTimeoutMs,
      // Request line plus headers; more is answered 431 by hardenClientServer.
      maxHeaderSize: config.maxHeaderBytes,
      // The client handler answers a missing Host itself, with a JSON body.
      requireHostHeader: false,
      // How often Node checks requests against REQUEST_TIMEOUT (its default is 30 s).
      connectionsCheckingInterval: Math.min(1_000, config.requestTimeoutMs),
      // Every answer's x-request-id and rate-limit headers are added at writeHead (gateway-response.ts).
      ServerResponse: GatewayResponse,
    },
    createClientHandler(ctx),
  );
  hardenClientServer(clientServer, ctx);
  const statusServer = createServer(createStatusHandler(ctx));
  // Node's request timeout covers receiving the request (headers and body), not
  // the answer: a slow body is cut, a long stream is not.
  clientServer.requestTimeout = config.requestTimeoutMs;
  clientServer.headersTimeout = Math.min(60_000, config.requestTimeoutMs);
  guardConnections(clientServer, {
    limits: config.connectionLimits ?? DEFAULT_CONNECTION_LIMITS,
    logger,
    registry: ctx.metrics.registry,
    trustedProxies: compileTrustedProxies(config.trustedProxies),
  });
  statusServer.maxConnections = STATUS_MAX_CONNECTIONS;
  let started: Promise<GatewayAddresses> | undefined;
  let stopped: Promise<void> | undefined;
  let stopWarnings: (() => void) | undefined;

  async function doStart(): Promise<GatewayAddresses> {
    if (ctx.providers.providers.some((p) => p.kind === "mock")) {
      logger.warn(
        "routing to the built-in mock provider: no PROVIDERS_FILE, OPENAI_* or ANTHROPIC_* settings, so answers are canned text, not a real model",
      );
    }
    if (ctx.syncState.ready) {
      logger.info(
        { revision: ctx.syncState.appliedRevision, keys: ctx.keyIndex.size, orgId: ctx.syncState.orgId },
        "loaded keys from the local cache; serving them until the control plane answers",
      );
    }
    const port = await listen(clientServer, config.port, config.host, "PORT");
    const statusPort = await listen(statusServer, config.statusPort, config.host, "STATUS_PORT");
    if (config.disableAuth) {
      stopWarnings = startAuthDisabledWarnings(logger, port);
      ctx.logWriter.audit({
        at: new Date(ctx.clock.now()).toISOString(),
        event: "auth_disabled",
        keyId: null,
        revision: null,
        detail: { port, host: config.host },
      });
    }
    if (config.authBypassPaths.length > 0) {
      logger.info(
        { paths: config.authBypassPaths },
        "AUTH_BYPASS_PATHS: these client paths are served without an API key",
      );
    }
    sync.start();
    quotaUpkeep.start();
    retention?.start();
    logger.info(
      {
        port,
        statusPort,
        host: config.host,
        gatewayId: ctx.gatewayId,
        gatewayName: config.gatewayName,
        providers: ctx.providers.providers.map((p) => `${p.name} (${p.kind})`),
        controlPlaneUrl: config.controlPlaneUrl,
      },
      "gateway listening",
    );
    return { host: config.host, port, statusPort };
  }

  async function doStop(): Promise<void> {
    stopWarnings?.();
    retention?.stop();
    await Promise.all([close(clientServer, config.shutdownGraceMs), close(statusServer, 0)]);
    // Requests are done: persist their usage, give held quota back, report what waits (best effort).
    await ctx.logWriter.flush();
    await quotaUpkeep.stop();
    await Promise.race([quotaUpkeep.flushUsage(), new Promise((r) => setTimeout(r, 1000).unref())]);
    await sync.stop();
    await ctx.providers.close();
    await ctx.mcp.close();
    await ctx.logWriter.close();
    // After the last batch: what the journal held is in SQLite now (or is replayed at the next start).
    ctx.quota.outbox.close();
    ctx.metrics.registry.clear();
    ctx.db.close();
    logger.info("gateway stopped");
  }

  return {
    context: ctx,
    start() {
      if (stopped) return Promise.reject(new Error("gateway was stopped"));
      started ??= doStart();
      return started;
    },
    stop() {
      stopped ??= doStop();
      return stopped;
    },
  };
}
