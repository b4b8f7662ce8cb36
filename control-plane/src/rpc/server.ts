import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { createContextValues, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { KeySyncService, QuotaService } from "@tollgate/shared";
import { acquire } from "./acquire.js";
import { reportUsage } from "./report-usage.js";
import type { AppContext } from "../context.js";
import { acknowledge, acknowledgeStream } from "./acknowledge.js";
import { kOnAuthenticated, kRemoteAddress, kTrackLiveness } from "./gateway-auth.js";
import { StreamLiveness } from "../changes/stream-liveness.js";
import { DEFAULT_SESSION_LIMITS } from "../grpc-session-limits.js";
import { guardSessions, type SessionGuard } from "./session-guard.js";
import { subscribe } from "./subscribe.js";

export function syncRoutes(app: AppContext) {
  return (router: ConnectRouter) => {
    router.service(KeySyncService, {
      subscribe: (req, ctx) => subscribe(app, req, ctx),
      acknowledge: (req, ctx) => acknowledge(app, req, ctx),
      acknowledgeStream: (reqs, ctx) => acknowledgeStream(app, reqs, ctx),
    });
    router.service(QuotaService, {
      acquire: (req, ctx) => acquire(app, req, ctx),
      reportUsage: (req, ctx) => reportUsage(app, req, ctx),
    });
  };
}

export interface SyncServer {
  port: number;
  tls: "plaintext" | "tls" | "mtls";
  close(): Promise<void>;
}

/** The gRPC server for the sync and quota services: HTTP/2, cleartext or TLS (mTLS with a client CA). */
export async function startSyncServer(app: AppContext, host: string, port: number): Promise<SyncServer> {
  let guard: SessionGuard | undefined;
  const offlineAfterMs = app.config.gatewayOfflineAfterMs;
  const liveness = new StreamLiveness({
    intervalMs: Math.max(10, Math.min(app.config.heartbeatIntervalMs, offlineAfterMs / 4)),
    timeoutMs: Math.max(offlineAfterMs, 2 * app.config.heartbeatIntervalMs),
    seen: (gateways) => app.ackWriter.writeSeen(gateways),
    logger: app.logger,
    onPing: (outcome) => app.metrics.syncPing(outcome),
  });
  const sessionOf = (req: unknown) => (req as { stream?: { session?: http2.ServerHttp2Session } }).stream?.session;
  const handler = connectNodeAdapter({
    routes: syncRoutes(app),
    // gzip and brotli are offered as connect-node does by default, and used only for a gateway that
    // asks (its SYNC_COMPRESSION): key hashes and ids are random, so gzip only halves a snapshot at
    // 4.5–6.8 ms of CPU here per 1,000 keys (bench/results/HISTORY.md, "snapshot stream").
    contextValues: (req) =>
      createContextValues()
        .set(kRemoteAddress, req.socket?.remoteAddress ?? null)
        .set(kOnAuthenticated, () => guard?.authenticated(sessionOf(req)))
        .set(
          kTrackLiveness,
          app.config.streamLiveness === false
            ? null
            : (gatewayId, orgId) => liveness.track(sessionOf(req), gatewayId, orgId),
        ),
  });
  const tls = app.config.grpcTls;
  const server = tls
    ? http2.createSecureServer(
        {
          cert: tls.cert,
          key: tls.key,
          ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
        },
        handler,
      )
    : http2.createServer(handler);
  guard = guardSessions(server, {
    limits: app.config.grpcSessions ?? DEFAULT_SESSION_LIMITS,
    logger: app.logger,
    registry: app.metrics.registry,
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    tls: tls ? (tls.clientCa ? "mtls" : "tls") : "plaintext",
    close: () =>
      new Promise<void>((resolve) => {
        void liveness.close();
        server.close(() => resolve());
        for (const session of sessions) session.close();
        // Streams that do not end on their own get cut after a grace period.
        setTimeout(() => {
          for (const session of sessions) session.destroy();
        }, 2000).unref();
      }),
  };
}
