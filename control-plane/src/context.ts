import { BruteForceGuard, type Logger } from "@tollgate/shared";
import { GatewayTokenCache } from "./auth/gateway-token-cache.js";
import { AckWriter } from "./changes/ack-writer.js";
import { ChangeFeed } from "./changes/change-feed.js";
import { ChangeNotifier } from "./changes/notifier.js";
import { StreamRegistry } from "./changes/stream-registry.js";
import type { ControlPlaneConfig } from "./config.js";
import type { DatabaseHandle, Db } from "./db/database.js";
import { createDatabaseHealth, type DatabaseHealth } from "./db/database-health.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { AlertDelivery } from "./quota/alerts.js";

/**
 * Everything a route or RPC needs, built once by createAppContext before any
 * server starts. Named `app` (or `appCtx`) everywhere; `ctx` is Koa's or Connect's
 * per-request context.
 */
export interface AppContext {
  config: ControlPlaneConfig;
  db: Db;
  dbKind: "postgres" | "pglite";
  defaultOrgId: string;
  notifier: ChangeNotifier;
  /** Shared change-log reads for the sync streams. */
  changeFeed: ChangeFeed;
  /** Gateway token → organization, briefly cached for acknowledgements. */
  tokenCache: GatewayTokenCache;
  /** Open sync streams by gateway token, so revoking a token closes them at once. */
  streams: StreamRegistry;
  /** Coalesced acknowledgement writes. */
  ackWriter: AckWriter;
  /** Bumped per organization when acknowledgements are written: wakes `?wait_for_gateways` receipts. */
  ackNotifier: ChangeNotifier;
  metrics: Metrics;
  logger: Logger;
  now: () => Date;
  /** Blocks client IPs after repeated invalid master keys. */
  bruteForce: BruteForceGuard;
  /** Sends queued budget alerts to the webhook; absent in tests that build a bare context. */
  alertDelivery?: AlertDelivery;
  /** Whether the database answers: 503 and /readyz while it does not. */
  dbHealth: DatabaseHealth;
}

/** Builds the whole context over an opened, migrated database; tests pass overrides. */
export function createAppContext(
  config: ControlPlaneConfig,
  database: Pick<DatabaseHandle, "db" | "kind"> & { health?: DatabaseHealth },
  defaultOrgId: string,
  overrides: { logger: Logger } & Partial<Omit<AppContext, "config" | "db" | "dbKind" | "defaultOrgId">>,
): AppContext {
  const notifier = overrides.notifier ?? new ChangeNotifier();
  const ackNotifier = overrides.ackNotifier ?? new ChangeNotifier();
  const tokenCache = overrides.tokenCache ?? new GatewayTokenCache();
  const metrics = overrides.metrics ?? createMetrics();
  const logger = overrides.logger;
  return {
    config,
    db: database.db,
    dbKind: database.kind,
    defaultOrgId,
    notifier,
    changeFeed:
      overrides.changeFeed ??
      new ChangeFeed(database.db, (orgId) => notifier.version(orgId), config.heartbeatIntervalMs),
    tokenCache,
    streams: overrides.streams ?? new StreamRegistry(tokenCache),
    ackWriter:
      overrides.ackWriter ??
      new AckWriter(database.db, {
        acks: ackNotifier,
        notifyReplicas: database.kind === "postgres",
        offlineAfterMs: config.gatewayOfflineAfterMs,
      }),
    ackNotifier,
    metrics,
    logger,
    now: overrides.now ?? (() => new Date()),
    bruteForce: overrides.bruteForce ?? new BruteForceGuard(config.bruteForce),
    alertDelivery: overrides.alertDelivery ?? new AlertDelivery({ db: database.db, config, metrics, logger }),
    dbHealth: overrides.dbHealth ?? database.health ?? createDatabaseHealth(logger),
  };
}
