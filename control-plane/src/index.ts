import http from "node:http";
import type { AddressInfo } from "node:net";
import { createLogger, type Logger, enableSyncTrace } from "@tollgate/shared";
import { verifySsoTargets } from "./sso/sign-in.js";
import { startChangeListener } from "./changes/pg-listener.js";
import type { ControlPlaneConfig } from "./config.js";
import { createAppContext, type AppContext } from "./context.js";
import { registerDatabaseMetrics } from "./db/database-health.js";
import { migrateToLatest, openDatabase, type DatabaseHandle } from "./db/database.js";
import { createHttpApp } from "./admin-app.js";
import { seedAllDefaultPrices } from "./pricing/seed-prices.js";
import { purgeEndedWindows } from "./quota/windows.js";
import { compactChangeLog } from "./repositories/change-log.js";
import { ensureDefaultOrg } from "./repositories/orgs.js";
import { startSyncServer, type SyncServer } from "./rpc/server.js";

export type { ControlPlaneConfig } from "./config.js";
export { loadConfig } from "./config.js";

export interface ControlPlane {
  /** Opens the database, migrates, and starts the admin API and the sync server. */
  start(): Promise<{ port: number; grpcPort: number }>;
  /** Idempotent. */
  stop(): Promise<void>;
  readonly context: AppContext | undefined;
}

export function createControlPlane(config: ControlPlaneConfig, overrides: { logger?: Logger } = {}): ControlPlane {
  const logger = overrides.logger ?? createLogger({ name: "control-plane", level: config.logLevel });
  if (config.syncTrace) enableSyncTrace();
  let handle: DatabaseHandle | undefined;
  let appCtx: AppContext | undefined;
  let httpServer: http.Server | undefined;
  let syncServer: SyncServer | undefined;
  let listener: { stop(): Promise<void> } | undefined;
  let stopping: Promise<void> | undefined;
  let compaction: NodeJS.Timeout | undefined;

  return {
    get context() {
      return appCtx;
    },
    async start() {
      handle = await openDatabase({
        databaseUrl: config.databaseUrl,
        schema: config.databaseSchema,
        dataDir: config.dataDir,
        logger,
      });
      logger.info({ database: handle.kind, location: handle.location }, "database opened; running migrations");
      const migrated = await migrateToLatest(handle.db, config.databaseSchema);
      const applied = migrated.results?.filter((r) => r.status === "Success").map((r) => r.migrationName) ?? [];
      logger.info({ applied }, applied.length ? "migrations applied" : "schema up to date");
      const app = createAppContext(config, handle, await ensureDefaultOrg(handle.db), { logger });
      appCtx = app;
      if (config.sso) {
        await verifySsoTargets(app, config.sso);
        logger.info(
          { issuer: config.sso.issuer, redirectUri: config.sso.redirectUri },
          "SSO sign-in on at /auth/login",
        );
      }
      registerDatabaseMetrics(app.metrics.registry, app.dbHealth);
      await seedAllDefaultPrices(app);
      if (handle.pool)
        listener = startChangeListener({
          pool: handle.pool,
          notifier: app.notifier,
          acksWritten: (payload) => app.ackWriter.acksWrittenElsewhere(payload),
          streams: app.streams,
          logger,
        });

      const koa = createHttpApp(app);
      const requestTimeoutMs = config.requestTimeoutMs ?? 60_000;
      // connectionsCheckingInterval: how often Node enforces the timeouts below (its default is 30 s).
      httpServer = http.createServer(
        { maxHeaderSize: 16 * 1024, connectionsCheckingInterval: Math.min(1_000, requestTimeoutMs) },
        koa.callback(),
      );
      // Malformed HTTP never reaches Koa: answer it in JSON too, and keep going.
      httpServer.on("clientError", (err: NodeJS.ErrnoException, socket) => {
        const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
        if (!socket.writable || inFlight?.headersSent) return socket.destroy();
        const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
        const [code, reason, message] =
          status === 431
            ? ["invalid_request", "Request Header Fields Too Large", "request headers are too large"]
            : status === 408
              ? [
                  "request_timeout",
                  "Request Timeout",
                  `the request was not received within ${requestTimeoutMs / 1000}s`,
                ]
              : ["invalid_request", "Bad Request", "malformed HTTP request"];
        const body = JSON.stringify({ error: { code, message } });
        socket.end(
          `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        );
      });
      httpServer.requestTimeout = requestTimeoutMs;
      httpServer.headersTimeout = Math.min(30_000, requestTimeoutMs);
      await new Promise<void>((resolve, reject) => {
        httpServer!.once("error", reject);
        httpServer!.listen(config.port, config.host, () => resolve());
      });
      syncServer = await startSyncServer(app, config.host, config.grpcPort);
      if (syncServer.tls === "plaintext") {
        logger.warn(
          "gRPC sync is plaintext: fine on loopback or a private network you trust; set GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE (and GRPC_TLS_CLIENT_CA_FILE for mTLS) anywhere else",
        );
      }
      compaction = setInterval(() => {
        compactChangeLog(app.db, new Date(Date.now() - config.changeLogRetentionMs)).then(
          (deleted) =>
            deleted > 0 && logger.info({ deleted, retentionMs: config.changeLogRetentionMs }, "change log compacted"),
          (err: unknown) => logger.warn({ err }, "change log compaction failed; will retry"),
        );
        purgeEndedWindows(app.db, new Date()).catch((err: unknown) =>
          logger.warn({ err }, "quota window purge failed; will retry"),
        );
      }, config.compactionIntervalMs);
      compaction.unref();
      app.alertDelivery?.start();
      const ports = { port: (httpServer.address() as AddressInfo).port, grpcPort: syncServer.port };
      logger.info({ ...ports, database: handle.kind, grpcTls: syncServer.tls }, "control plane listening");
      return ports;
    },
    stop() {
      stopping ??= (async () => {
        clearInterval(compaction);
        await appCtx?.alertDelivery?.stop();
        appCtx?.streams.closeAll("control plane stopping");
        await Promise.all([
          syncServer?.close(),
          new Promise<void>((resolve) => {
            if (!httpServer?.listening) return resolve();
            httpServer.close(() => resolve());
            httpServer.closeIdleConnections();
          }),
        ]);
        await appCtx?.ackWriter
          .drain()
          .catch((err: unknown) => logger.warn({ err }, "could not write the last acknowledgements"));
        await listener?.stop();
        await handle?.destroy();
        logger.info("control plane stopped");
        logger.flush?.();
      })();
      return stopping;
    },
  };
}
