import type { KeyObject } from "node:crypto";
import type { Transaction } from "better-sqlite3";
import { SnapshotReason, type Change, syncTrace } from "@tollgate/shared";
import type { Clock } from "../clock.js";
import type { CompiledKey, KeyIndex } from "../auth/key-index.js";
import type { StoredKey } from "../auth/stored-key.js";
import { PriceIndex, type PriceRule } from "../pricing/price-index.js";
import { McpServerIndex, type McpServerRecord } from "../mcp/server-index.js";
import type { AuditEntry, AuditEvent } from "./audit-repository.js";
import { META } from "./meta-repository.js";
import type { StoredSigningKey } from "./signing-key-repository.js";
import type { GatewayStore } from "./store.js";
import { writeChanges, type DeltaResult, type IndexOp } from "./change-writer.js";
import { changedFields, compile, describe, publicKeyOf } from "./synced-records.js";
import { SnapshotBuilder, type SnapshotHead, type SnapshotPart } from "./snapshot-builder.js";

export type { DeltaResult } from "./change-writer.js";
export type { SnapshotBuilder, SnapshotHead, SnapshotPart } from "./snapshot-builder.js";

/** From this many keys a snapshot gets a page cache of 1 KiB per key, up to SNAPSHOT_CACHE_MAX_KIB. */
const SNAPSHOT_LARGE = 2_000;
const SNAPSHOT_CACHE_MAX_KIB = 256 * 1024;

export type SnapshotInput = SnapshotHead & SnapshotPart;

export interface SnapshotResult {
  revision: number;
  added: number;
  changed: number;
  removed: number;
  unchanged: number;
  keys: number;
  signingKeys: number;
  modelPrices: number;
  mcpServers: number;
}

/**
 * The durable key cache (SQLite) and its in-memory indexes (keys, prices).
 * Every apply is one SQLite transaction holding the keys, the prices, the
 * revision and the audit rows; the indexes change only after that commit, so
 * memory never runs ahead of disk.
 */
export class KeyCache {
  // Run with .immediate(): the write lock is taken first (waiting out the log writer thread's batch),
  // so a transaction that reads before it writes can never fail to upgrade.
  private readonly snapshotTx: Transaction<
    (
      s: SnapshotHead,
      keys: StoredKey[],
      signingKeys: StoredSigningKey[],
      prices: PriceRule[],
      mcpServers: McpServerRecord[],
    ) => SnapshotResult
  >;
  private readonly deltaTx: Transaction<(changes: Change[]) => { result: DeltaResult; ops: IndexOp[] }>;

  constructor(
    private readonly store: GatewayStore,
    readonly index: KeyIndex,
    private readonly clock: Clock,
    readonly prices: PriceIndex = new PriceIndex(),
    readonly mcpServers: McpServerIndex = new McpServerIndex(),
  ) {
    this.snapshotTx = store.db.transaction(
      (
        s: SnapshotHead,
        keys: StoredKey[],
        signingKeys: StoredSigningKey[],
        prices: PriceRule[],
        mcpServers: McpServerRecord[],
      ) => this.writeSnapshot(s, keys, signingKeys, prices, mcpServers),
    );
    this.deltaTx = store.db.transaction((changes: Change[]) =>
      writeChanges(store, changes, new Date(this.clock.now()).toISOString(), this.appliedRevision),
    );
  }

  get appliedRevision(): number {
    return Number(this.store.meta.get(META.revision) ?? 0);
  }

  /**
   * Loads the cache into memory at boot, compiling every key. `hasSnapshot`
   * is true when a snapshot was applied in an earlier run, so the gateway can
   * serve from the cache; `resyncRequired` when that cache predates fields
   * the gateway now enforces (see META.resyncRequired).
   */
  load(): {
    hasSnapshot: boolean;
    revision: number;
    orgId: string;
    keys: number;
    signingKeys: number;
    modelPrices: number;
    resyncRequired: boolean;
  } {
    let keys = 0;
    const store = this.store;
    // A generator, not an array: each row is compiled and indexed before the next is read.
    function* compiled(): Iterable<CompiledKey> {
      for (const k of store.keys.each()) {
        keys++;
        yield compile(k);
      }
    }
    const prices = this.store.modelPrices.all();
    const signingKeys = this.store.signingKeys
      .all()
      .map((k): [string, KeyObject] => [k.id, publicKeyOf(k.id, k.publicKey)]);
    const rev = this.store.meta.get(META.revision);
    const orgId = this.store.meta.get(META.orgId) ?? "";
    this.index.replaceAll({ keys: compiled(), signingKeys, orgId });
    this.prices.replaceAll(prices);
    this.mcpServers.replaceAll(this.store.mcpServers.all());
    return {
      hasSnapshot: rev !== undefined,
      revision: Number(rev ?? 0),
      orgId,
      keys,
      signingKeys: signingKeys.length,
      modelPrices: prices.length,
      resyncRequired: this.store.meta.get(META.resyncRequired) !== undefined,
    };
  }

  /** Replaces the whole cache (keys and signing keys) with a snapshot, atomically. */
  applySnapshot(s: SnapshotInput): SnapshotResult {
    const builder = this.beginSnapshot(s);
    builder.add(s);
    return this.commitSnapshot(builder);
  }

  /**
   * Starts receiving a snapshot: each part is checked and compiled as it arrives (see
   * SnapshotBuilder); nothing is written, and nothing served changes, until commitSnapshot.
   */
  beginSnapshot(head: SnapshotHead): SnapshotBuilder {
    return new SnapshotBuilder(head);
  }

  /** Writes a received snapshot in one transaction, then swaps the indexes; on error nothing changes. */
  commitSnapshot(b: SnapshotBuilder): SnapshotResult {
    const { head, stored, compiled, signingKeys, prices, mcpServers } = b;
    const result = this.withLargePageCache(stored.length, () =>
      this.snapshotTx.immediate(
        head,
        stored,
        signingKeys.map((k) => k.stored),
        prices,
        mcpServers,
      ),
    );
    this.index.replaceAll({
      keys: compiled,
      signingKeys: signingKeys.map((k) => [k.stored.id, k.publicKey]),
      orgId: head.orgId,
    });
    this.prices.replaceAll(prices);
    this.mcpServers.replaceAll(mcpServers);
    return result;
  }

  /**
   * Runs a large snapshot's transaction with a page cache that holds its dirty pages (about
   * 1 KiB per key): with SQLite's default 2 MiB, the transaction spills pages to the WAL while
   * it inserts (random key_hash order) and reads them back. The cache shrinks back afterwards.
   */
  private withLargePageCache<T>(keys: number, run: () => T): T {
    if (keys < SNAPSHOT_LARGE) return run();
    const db = this.store.db;
    const previous = db.pragma("cache_size", { simple: true }) as number;
    db.pragma(`cache_size = -${Math.min(SNAPSHOT_CACHE_MAX_KIB, keys)}`);
    try {
      return run();
    } finally {
      db.pragma(`cache_size = ${previous}`);
      db.pragma("shrink_memory");
    }
  }

  /**
   * Applies consecutive changes (see planChangeBatch) and the last revision,
   * atomically; on error nothing changes.
   */
  applyChanges(changes: Change[]): DeltaResult {
    const { result, ops } = this.deltaTx.immediate(changes);
    syncTrace("sqlite_apply", "", result.revision);
    for (const op of ops) {
      if (op.kind === "delete") this.index.delete(op.id);
      else if (op.kind === "upsert") this.index.upsert(op.key);
      else if (op.kind === "price") this.prices.upsert(op.rule);
      else if (op.kind === "price_delete") this.prices.delete(op.provider, op.model);
      else if (op.kind === "mcp_server") this.mcpServers.upsert(op.server);
      else if (op.kind === "mcp_server_delete") this.mcpServers.delete(op.id);
      else this.index.upsertSigningKey(op.id, op.publicKey);
    }
    syncTrace("index_swap", "", result.revision);
    return result;
  }

  private writeSnapshot(
    s: SnapshotHead,
    keys: StoredKey[],
    signingKeys: StoredSigningKey[],
    prices: PriceRule[],
    mcpServers: McpServerRecord[],
  ): SnapshotResult {
    const at = new Date(this.clock.now()).toISOString();
    const old = new Map<string, StoredKey>();
    for (const k of this.store.keys.each()) old.set(k.id, k);
    // A first load (nothing cached yet, e.g. a new gateway) changes no key the gateway served:
    // its snapshot_applied row counts the keys added, instead of one row per key (100,000 rows,
    // a third of the apply and most of gateway.db at 100,000 keys). Each key's row says at which
    // revision it was written (keys.updated_revision). On top of a cache, each difference is audited.
    const firstLoad = old.size === 0;
    const audit: AuditEntry[] = [];
    const auditKey = (event: AuditEvent, k: StoredKey, change: Record<string, unknown>) => {
      if (firstLoad) return;
      audit.push({
        at,
        event,
        keyId: k.id,
        revision: s.revision,
        detail: { source: "snapshot", ...change, ...describe(k) },
      });
    };
    const writes: StoredKey[] = [];
    let added = 0;
    let changed = 0;
    let unchanged = 0;
    for (const k of keys) {
      const prev = old.get(k.id);
      old.delete(k.id);
      if (!prev) {
        added++;
        writes.push(k);
        auditKey("key_upsert", k, { change: "added" });
        continue;
      }
      const fields = changedFields(prev, k);
      if (fields.length === 0) {
        unchanged++;
        continue;
      }
      changed++;
      writes.push(k);
      auditKey("key_upsert", k, { change: "changed", fields });
      // Free the old hash first so a hash moving between keys cannot trip UNIQUE.
      if (fields.includes("key_hash")) this.store.keys.delete(k.id);
    }
    for (const gone of old.values()) {
      this.store.keys.delete(gone.id);
      auditKey("key_delete", gone, { change: "removed" });
    }
    for (const k of writes) this.store.keys.upsert(k, s.revision);
    this.store.signingKeys.clear();
    for (const k of signingKeys) this.store.signingKeys.upsert(k, s.revision);
    // The price table is replaced whole; the snapshot's audit row counts it.
    this.store.modelPrices.clear();
    for (const p of prices) this.store.modelPrices.upsert(p, s.revision);
    this.store.mcpServers.clear();
    for (const m of mcpServers) this.store.mcpServers.upsert(m, s.revision);
    const result: SnapshotResult = {
      revision: s.revision,
      added,
      changed,
      removed: old.size,
      unchanged,
      keys: keys.length,
      signingKeys: signingKeys.length,
      modelPrices: prices.length,
      mcpServers: mcpServers.length,
    };
    audit.push({
      at,
      event: "snapshot_applied",
      keyId: null,
      revision: s.revision,
      detail: {
        reason: SnapshotReason[s.reason] ?? s.reason,
        org_id: s.orgId,
        ...result,
        ...(firstLoad ? { first_load: true } : {}),
        signing_key_ids: signingKeys.map((k) => k.id),
      },
    });
    for (const a of audit) this.store.audit.insert(a);
    this.store.meta.set(META.revision, String(s.revision));
    this.store.meta.set(META.orgId, s.orgId);
    this.store.meta.delete(META.resyncRequired);
    return result;
  }
}
