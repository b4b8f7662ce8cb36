import type { BlockList } from "node:net";
import { BruteForceGuard, TOLLGATE_VERSION, createLogger, newId, type Logger } from "@tollgate/shared";
import { UnsyncedKeys } from "./auth/unsynced-keys.js";
import { systemClock, type Clock } from "./clock.js";
import type { GatewayConfig } from "./config.js";
import type { GatewayStore } from "./db/store.js";
import { META } from "./db/meta-repository.js";
import { openStoreWithRecovery, type CacheRecovery } from "./db/recovery.js";
import { LogWriter } from "./db/request-log-writer.js";
import { KeyIndex } from "./auth/key-index.js";
import { compileTrustedProxies } from "./config.js";
import { GatewayMetrics } from "./metrics.js";
import { ProviderRegistry } from "./providers/registry.js";
import type { Provider } from "./providers/types.js";
import { KeyCache } from "./db/key-cache.js";
import { GatewayQuota } from "./quota/gateway-quota.js";
import { PriceIndex } from "./pricing/price-index.js";
import { McpServerIndex } from "./mcp/server-index.js";
import { createMcpGateway, type McpGateway } from "./mcp/mcp-gateway.js";
import { SyncState, formatDuration } from "./background/sync-state.js";

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
  /**
   * The synced price table: lookup(kind, model), costMicroUsd(kind, model, usage)
   * and estimateMicroUsd(kind, model, promptTokens, maxOutputTokens).
   */
  prices: PriceIndex;
  syncState: SyncState;
  metrics: GatewayMetrics;
  logWriter: LogWriter;
  /** The upstreams and the model routing table, built once from the config. */
  providers: ProviderRegistry;
  /** Set when the cache file was found damaged at boot and replaced by an empty one. */
  cacheRecovery: CacheRecovery | null;
  /** TRUSTED_PROXIES, compiled; null when empty (X-Forwarded-For is never believed). */
  trustedProxies: BlockList | null;
  /** Blocks client IPs after repeated invalid keys. */
  bruteForce: BruteForceGuard;
  /** Which unknown keys count as guesses: never one this gateway may not have yet. */
  unsyncedKeys: UnsyncedKeys;
  /** Fleet-wide quotas: limits per key, leases, the usage outbox. */
  quota: GatewayQuota;
  /** MCP: the synced servers, /mcp/{server} and the aggregated /mcp. */
  mcp: McpGateway;
}

export interface ContextOverrides {
  logger?: Logger;
  clock?: Clock;
  /** Adapters that replace the ones the config would build, matched by name. */
  providers?: Provider[];
}

/**
 * Opens the SQLite cache, loads it into memory and builds the context. When
 * the cache holds a snapshot from an earlier run the gateway is ready at once.
 * A damaged cache file is moved aside and replaced by an empty one (not ready
 * until the control plane's snapshot), never a crash.
 */
export function createAppContext(config: GatewayConfig, overrides: ContextOverrides = {}): AppContext {
  const logger = overrides.logger ?? createLogger({ name: "gateway", level: config.logLevel });
  const trustedProxies = compileTrustedProxies(config.trustedProxies);
  const clock = overrides.clock ?? systemClock;
  const keyIndex = new KeyIndex();
  const prices = new PriceIndex();
  const mcpServers = new McpServerIndex();
  // The whole boot-time read runs under recovery: a damaged file may only show
  // itself when its pages are read.
  const {
    store: db,
    probed,
    recovery,
  } = openStoreWithRecovery(config.dataDir, clock.now(), (store) => {
    const keyCache = new KeyCache(store, keyIndex, clock, prices, mcpServers);
    const loaded = keyCache.load();
    const lastContact = Number(store.meta.get(META.lastContactAtMs));
    return {
      keyCache,
      loaded,
      lastContactMs: Number.isSafeInteger(lastContact) && lastContact > 0 ? lastContact : null,
    };
  });
  const { keyCache, loaded } = probed;
  if (db.migrated.length > 0) logger.info({ path: db.path, migrations: db.migrated }, "migrated gateway database");
  if (loaded.resyncRequired) {
    logger.warn(
      { revision: loaded.revision, keys: loaded.keys },
      "the cache was written by an older release that did not keep everything now synced (key scopes, signing keys, model prices): serving its keys as before until the control plane's full snapshot arrives",
    );
  }

  let gatewayId = db.meta.get(META.gatewayId);
  if (!gatewayId) {
    gatewayId = newId("gw");
    db.meta.set(META.gatewayId, gatewayId);
  }

  const syncState = new SyncState(clock, {
    maxStalenessMs: config.maxStalenessMs,
    onStaleChange: (stale, sinceMs) => {
      if (stale) {
        logger.error(
          { secondsSinceContact: Math.round(sinceMs / 1000), maxStalenessMs: config.maxStalenessMs },
          `no contact with the control plane for ${formatDuration(sinceMs)}, longer than MAX_STALENESS (${formatDuration(config.maxStalenessMs ?? 0)}): failing closed, client requests get 503 until the control plane is reachable again`,
        );
      } else {
        logger.info("contact with the control plane restored: serving requests again");
      }
    },
  });
  syncState.appliedRevision = loaded.revision;
  syncState.orgId = loaded.orgId;
  syncState.resyncRequired = loaded.resyncRequired;
  syncState.lastContactMs = probed.lastContactMs;
  if (loaded.hasSnapshot) syncState.source = "cache";

  // The quota gauges are read at scrape time, once `quota` below exists.
  const metrics = new GatewayMetrics(syncState, {
    outboxBacklog: () => quota.outbox.backlog,
    clockOffsetMs: () => quota.clock.offsetMs,
    usageJournalFailures: () => quota.outbox.journalFailures,
  });
  metrics.syncState({ appliedRevision: loaded.revision, keys: keyIndex.size, connected: false });
  metrics.setAuthDisabled(config.disableAuth);

  if (recovery) {
    metrics.cacheRecoveredAtBoot();
    logger.error(
      {
        path: recovery.path,
        movedTo: recovery.movedTo,
        reason: recovery.reason,
        gatewayIdKept: recovery.salvagedGatewayId !== undefined,
      },
      `the key cache at ${recovery.path} is damaged (${recovery.reason}); moved it to ${recovery.movedTo} and starting with an empty cache: the control plane will send a full snapshot`,
    );
    db.audit.insert({
      at: new Date(clock.now()).toISOString(),
      event: "cache_recovered",
      keyId: null,
      revision: null,
      detail: {
        path: recovery.path,
        moved_to: recovery.movedTo,
        reason: recovery.reason,
        gateway_id_kept: recovery.salvagedGatewayId !== undefined,
      },
    });
  }

  const logWriter = new LogWriter(db, logger, { onDropped: (rows) => metrics.logRowDropped(rows) });
  const quota = new GatewayQuota({
    store: db,
    logWriter,
    clock,
    logger,
    onDegraded: (degraded) => metrics.setQuotaDegraded(degraded),
    journal: { fsync: config.usageJournalFsync === true },
  });
  return {
    config,
    logger,
    clock,
    gatewayId,
    db,
    keyIndex,
    keyCache,
    prices,
    syncState,
    metrics,
    logWriter,
    quota,
    mcp: createMcpGateway({
      servers: mcpServers,
      secrets: config.mcp.secrets,
      maxMessageBytes: config.mcp.maxMessageBytes,
      version: TOLLGATE_VERSION,
    }),
    providers: new ProviderRegistry(config.providers, overrides.providers),
    cacheRecovery: recovery,
    bruteForce: new BruteForceGuard({ ...config.bruteForce, now: () => clock.now() }),
    unsyncedKeys: new UnsyncedKeys({
      mayMissKeys: () => syncState.mayMissKeys(),
      windowMs: config.bruteForce.ttlMs,
      now: () => clock.now(),
    }),
    trustedProxies,
  };
}
