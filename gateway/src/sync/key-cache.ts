import { timestampMs } from "@bufbuild/protobuf/wkt";
import { KeyStatus, SnapshotReason, type Change, type KeyUpsert } from "@tollgate/shared";
import type { Clock } from "../context.js";
import type { GatewayStore } from "../db/store.js";
import { META } from "../db/meta-repository.js";
import type { StoredKey } from "../db/key-repository.js";
import type { AuditEntry } from "../db/audit-repository.js";
import type { KeyIndex } from "../auth/key-index.js";

/** A change or snapshot the gateway refuses to apply; its old state stays. */
export class ApplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ApplyError";
  }
}

export interface SnapshotInput {
  revision: number;
  orgId: string;
  reason: SnapshotReason;
  keys: KeyUpsert[];
}

export interface SnapshotResult {
  revision: number;
  added: number;
  changed: number;
  removed: number;
  unchanged: number;
  keys: number;
}

export interface DeltaResult {
  revision: number;
  upserts: number;
  deletes: number;
}

export type BatchPlan =
  | { kind: "noop" }
  | { kind: "gap"; expected: number; got: number }
  | { kind: "apply"; changes: Change[] };

/**
 * Decides what to do with a change batch given the applied revision: drop
 * what is already applied, refuse a gap, else apply the rest.
 */
export function planChangeBatch(applied: number, changes: readonly Change[]): BatchPlan {
  const fresh = changes.filter((c) => Number(c.revision) > applied);
  if (fresh.length === 0) return { kind: "noop" };
  let expected = applied + 1;
  for (const c of fresh) {
    const got = Number(c.revision);
    if (got !== expected) return { kind: "gap", expected, got };
    expected++;
  }
  return { kind: "apply", changes: fresh };
}

function toStoredKey(k: KeyUpsert): StoredKey {
  if (!k.id) throw new ApplyError("key upsert without an id");
  if (k.keyHash.length !== 32) {
    throw new ApplyError(`key ${k.id}: key_hash must be a 32-byte SHA-256, got ${k.keyHash.length} bytes`);
  }
  return {
    id: k.id,
    keyHash: Buffer.from(k.keyHash),
    prefix: k.keyPrefix,
    name: k.name,
    userId: k.userId,
    teamId: k.teamId,
    status: k.status,
    expiresAtMs: k.expiresAt ? timestampMs(k.expiresAt) : null,
    createdAtMs: k.createdAt ? timestampMs(k.createdAt) : 0,
  };
}

/** Audit view of a key: public fields only, never the hash. */
function describe(k: StoredKey): Record<string, unknown> {
  return {
    prefix: k.prefix,
    name: k.name,
    user_id: k.userId,
    team_id: k.teamId || null,
    status: KeyStatus[k.status] ?? k.status,
    expires_at: k.expiresAtMs === null ? null : new Date(k.expiresAtMs).toISOString(),
  };
}

function changedFields(a: StoredKey, b: StoredKey): string[] {
  const out: string[] = [];
  if (!a.keyHash.equals(b.keyHash)) out.push("key_hash");
  if (a.prefix !== b.prefix) out.push("key_prefix");
  if (a.name !== b.name) out.push("name");
  if (a.userId !== b.userId) out.push("user_id");
  if (a.teamId !== b.teamId) out.push("team_id");
  if (a.status !== b.status) out.push("status");
  if (a.expiresAtMs !== b.expiresAtMs) out.push("expires_at");
  if (a.createdAtMs !== b.createdAtMs) out.push("created_at");
  return out;
}

/**
 * The durable key cache (SQLite) and its in-memory index. Every apply is one
 * SQLite transaction holding the keys, the revision and the audit rows; the
 * index changes only after that commit, so memory never runs ahead of disk.
 */
export class KeyCache {
  private readonly snapshotTx: (s: SnapshotInput, keys: StoredKey[]) => SnapshotResult;
  private readonly deltaTx: (changes: Change[]) => { result: DeltaResult; ops: Array<StoredKey | string> };

  constructor(
    private readonly store: GatewayStore,
    readonly index: KeyIndex,
    private readonly clock: Clock,
  ) {
    this.snapshotTx = store.db.transaction((s: SnapshotInput, keys: StoredKey[]) => this.writeSnapshot(s, keys));
    this.deltaTx = store.db.transaction((changes: Change[]) => this.writeChanges(changes));
  }

  get appliedRevision(): number {
    return Number(this.store.meta.get(META.revision) ?? 0);
  }

  /**
   * Loads the cache into memory at boot. `hasSnapshot` is true when a snapshot
   * was applied in an earlier run, so the gateway can serve from the cache.
   */
  load(): { hasSnapshot: boolean; revision: number; orgId: string; keys: number } {
    const keys = this.store.keys.all();
    this.index.replaceAll(keys);
    const rev = this.store.meta.get(META.revision);
    return {
      hasSnapshot: rev !== undefined,
      revision: Number(rev ?? 0),
      orgId: this.store.meta.get(META.orgId) ?? "",
      keys: keys.length,
    };
  }

  /** Replaces the whole cache with a snapshot, atomically. */
  applySnapshot(s: SnapshotInput): SnapshotResult {
    const seen = new Set<string>();
    const keys = s.keys.map((k) => {
      const stored = toStoredKey(k);
      if (seen.has(stored.id)) throw new ApplyError(`snapshot lists key ${stored.id} twice`);
      seen.add(stored.id);
      return stored;
    });
    const result = this.snapshotTx(s, keys);
    this.index.replaceAll(keys);
    return result;
  }

  /**
   * Applies consecutive changes (see planChangeBatch) and the last revision,
   * atomically; on error nothing changes.
   */
  applyChanges(changes: Change[]): DeltaResult {
    const { result, ops } = this.deltaTx(changes);
    for (const op of ops) {
      if (typeof op === "string") this.index.delete(op);
      else this.index.upsert(op);
    }
    return result;
  }

  private writeSnapshot(s: SnapshotInput, keys: StoredKey[]): SnapshotResult {
    const at = new Date(this.clock.now()).toISOString();
    const old = new Map(this.store.keys.all().map((k) => [k.id, k]));
    const audit: AuditEntry[] = [];
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
        audit.push({ at, event: "key_upsert", keyId: k.id, revision: s.revision, detail: { source: "snapshot", change: "added", ...describe(k) } });
        continue;
      }
      const fields = changedFields(prev, k);
      if (fields.length === 0) {
        unchanged++;
        continue;
      }
      changed++;
      writes.push(k);
      audit.push({ at, event: "key_upsert", keyId: k.id, revision: s.revision, detail: { source: "snapshot", change: "changed", fields, ...describe(k) } });
      // Free the old hash first so a hash moving between keys cannot trip UNIQUE.
      if (fields.includes("key_hash")) this.store.keys.delete(k.id);
    }
    for (const gone of old.values()) {
      this.store.keys.delete(gone.id);
      audit.push({ at, event: "key_delete", keyId: gone.id, revision: s.revision, detail: { source: "snapshot", change: "removed", ...describe(gone) } });
    }
    for (const k of writes) this.store.keys.upsert(k, s.revision);
    const result: SnapshotResult = {
      revision: s.revision,
      added,
      changed,
      removed: old.size,
      unchanged,
      keys: keys.length,
    };
    audit.push({
      at,
      event: "snapshot_applied",
      keyId: null,
      revision: s.revision,
      detail: { reason: SnapshotReason[s.reason] ?? s.reason, org_id: s.orgId, ...result },
    });
    for (const a of audit) this.store.audit.insert(a);
    this.store.meta.set(META.revision, String(s.revision));
    this.store.meta.set(META.orgId, s.orgId);
    return result;
  }

  private writeChanges(changes: Change[]): { result: DeltaResult; ops: Array<StoredKey | string> } {
    const at = new Date(this.clock.now()).toISOString();
    const ops: Array<StoredKey | string> = [];
    let upserts = 0;
    let deletes = 0;
    let last = this.appliedRevision;
    for (const c of changes) {
      const revision = Number(c.revision);
      if (revision !== last + 1) throw new ApplyError(`change revision ${revision} does not follow ${last}`);
      last = revision;
      switch (c.op.case) {
        case "keyUpsert": {
          const k = toStoredKey(c.op.value);
          this.store.keys.upsert(k, revision);
          this.store.audit.insert({ at, event: "key_upsert", keyId: k.id, revision, detail: describe(k) });
          ops.push(k);
          upserts++;
          break;
        }
        case "keyDelete": {
          const id = c.op.value.id;
          const existed = this.store.keys.delete(id);
          this.store.audit.insert({ at, event: "key_delete", keyId: id, revision, detail: { existed } });
          ops.push(id);
          deletes++;
          break;
        }
        default:
          // An op this gateway does not know (a newer control plane): nothing to
          // apply, but its revision still counts so the sequence stays whole.
          break;
      }
    }
    this.store.meta.set(META.revision, String(last));
    return { result: { revision: last, upserts, deletes }, ops };
  }
}
