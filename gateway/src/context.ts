import { createLogger, newId, type Logger } from "@tollgate/shared";
import type { GatewayConfig } from "./config.js";
import { openStore, type GatewayStore } from "./db/store.js";
import { META } from "./db/meta-repository.js";
import { LogWriter } from "./db/log-writer.js";
import { KeyIndex } from "./auth/key-index.js";
import { GatewayMetrics } from "./metrics.js";
import { createProvider } from "./providers/registry.js";
import type { Provider } from "./providers/types.js";
import { KeyCache } from "./sync/key-cache.js";
import { SyncState } from "./sync/sync-state.js";

/** Time source; tests pass a fixed or stepping clock. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Everything a route or the sync client needs, built once from the config. */
export interface AppContext {
  config: GatewayConfig;
  logger: Logger;
  clock: Clock;
  /** Stable id persisted in SQLite at first boot. */
  gatewayId: string;
  db: GatewayStore;
  keyIndex: KeyIndex;
  keyCache: KeyCache;
  syncState: SyncState;
  metrics: GatewayMetrics;
  logWriter: LogWriter;
  provider: Provider;
}

export interface ContextOverrides {
  logger?: Logger;
  clock?: Clock;
  provider?: Provider;
}

/**
 * Opens the SQLite cache, loads it into memory and builds the context. When
 * the cache holds a snapshot from an earlier run the gateway is ready at once.
 */
export function createAppContext(config: GatewayConfig, overrides: ContextOverrides = {}): AppContext {
  const logger = overrides.logger ?? createLogger({ name: "gateway", level: config.logLevel });
  const clock = overrides.clock ?? systemClock;
  const db = openStore(config.dataDir);
  if (db.migrated.length > 0) logger.info({ path: db.path, migrations: db.migrated }, "migrated gateway database");

  let gatewayId = db.meta.get(META.gatewayId);
  if (!gatewayId) {
    gatewayId = newId("gw");
    db.meta.set(META.gatewayId, gatewayId);
  }

  const keyIndex = new KeyIndex();
  const keyCache = new KeyCache(db, keyIndex, clock);
  const syncState = new SyncState(clock);
  const loaded = keyCache.load();
  syncState.appliedRevision = loaded.revision;
  syncState.orgId = loaded.orgId;
  if (loaded.hasSnapshot) syncState.source = "cache";

  const metrics = new GatewayMetrics(syncState);
  metrics.syncState({ appliedRevision: loaded.revision, keys: keyIndex.size, connected: false, lag: null });

  return {
    config,
    logger,
    clock,
    gatewayId,
    db,
    keyIndex,
    keyCache,
    syncState,
    metrics,
    logWriter: new LogWriter(db, logger),
    provider: overrides.provider ?? createProvider(config.provider, { upstreamTimeoutMs: config.upstreamTimeoutMs }),
  };
}
