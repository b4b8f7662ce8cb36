import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KeyStatus, SnapshotReason } from "@tollgate/shared";
import { openStore, type GatewayStore } from "../db/store.js";
import { KeyIndex, indexKeyOfApiKey } from "../auth/key-index.js";
import { deleteChange, makeKey, upsertChange } from "../test-support/keys.js";
import { tempDir } from "../test-support/temp-dir.js";
import { ApplyError, KeyCache, planChangeBatch } from "./key-cache.js";

const clock = { now: () => Date.parse("2025-06-01T12:00:00Z") };

describe("KeyCache (SQLite apply)", () => {
  let dir: ReturnType<typeof tempDir>;
  let store: GatewayStore;
  let cache: KeyCache;

  const open = () => {
    store = openStore(dir.path);
    cache = new KeyCache(store, new KeyIndex(), clock);
    return cache.load();
  };

  beforeEach(() => {
    dir = tempDir();
    open();
  });
  afterEach(() => {
    store.close();
    dir.remove();
  });

  it("starts empty and not ready", () => {
    expect(cache.load()).toEqual({ hasSnapshot: false, revision: 0, orgId: "", keys: 0 });
  });

  it("replaces the whole cache with a snapshot, with its revision and org", () => {
    const a = makeKey();
    const b = makeKey();
    cache.applySnapshot({ revision: 5, orgId: "org_a", reason: SnapshotReason.NEW_GATEWAY, keys: [a.upsert, b.upsert] });
    const c = makeKey();
    const result = cache.applySnapshot({ revision: 9, orgId: "org_a", reason: SnapshotReason.COMPACTED, keys: [b.upsert, c.upsert] });

    expect(result).toMatchObject({ revision: 9, added: 1, removed: 1, changed: 0, unchanged: 1, keys: 2 });
    expect(cache.appliedRevision).toBe(9);
    expect(store.keys.all().map((k) => k.id).sort()).toEqual([b.upsert.id, c.upsert.id].sort());
    expect(cache.index.lookup(indexKeyOfApiKey(a.secret))).toBeUndefined();
    expect(cache.index.lookup(indexKeyOfApiKey(c.secret))?.id).toBe(c.upsert.id);
  });

  it("writes audit rows for the snapshot diff only, never a hash", () => {
    const a = makeKey();
    const b = makeKey();
    const unchanged = makeKey();
    cache.applySnapshot({ revision: 1, orgId: "org_a", reason: SnapshotReason.NEW_GATEWAY, keys: [a.upsert, b.upsert, unchanged.upsert] });
    const before = store.audit.list().length;

    const bInactive = { ...b.upsert, status: KeyStatus.INACTIVE };
    const c = makeKey();
    cache.applySnapshot({ revision: 7, orgId: "org_a", reason: SnapshotReason.COMPACTED, keys: [bInactive, unchanged.upsert, c.upsert] });

    const rows = store.audit.list().slice(before);
    const byKey = Object.fromEntries(rows.filter((r) => r.keyId).map((r) => [r.keyId, r]));
    expect(rows).toHaveLength(4);
    expect(byKey[a.upsert.id]).toMatchObject({ event: "key_delete", revision: 7, detail: { change: "removed" } });
    expect(byKey[b.upsert.id]).toMatchObject({ event: "key_upsert", revision: 7, detail: { change: "changed", fields: ["status"], status: "INACTIVE" } });
    expect(byKey[c.upsert.id]).toMatchObject({ event: "key_upsert", revision: 7, detail: { change: "added" } });
    expect(byKey[unchanged.upsert.id]).toBeUndefined();
    const summary = rows.find((r) => r.event === "snapshot_applied");
    expect(summary).toMatchObject({ revision: 7, detail: { reason: "COMPACTED", added: 1, changed: 1, removed: 1, unchanged: 1 } });

    const text = JSON.stringify(store.audit.list());
    for (const k of [a, b, c, unchanged]) {
      expect(text).not.toContain(k.secret);
      expect(text).not.toContain(Buffer.from(k.upsert.keyHash).toString("hex"));
      expect(text).not.toContain(Buffer.from(k.upsert.keyHash).toString("base64"));
    }
  });

  it("applies deltas with their revision and audits each change", () => {
    const a = makeKey();
    cache.applySnapshot({ revision: 3, orgId: "org_a", reason: SnapshotReason.NEW_GATEWAY, keys: [a.upsert] });
    const b = makeKey();
    const result = cache.applyChanges([upsertChange(4, b.upsert), deleteChange(5, a.upsert.id)]);

    expect(result).toEqual({ revision: 5, upserts: 1, deletes: 1 });
    expect(cache.appliedRevision).toBe(5);
    expect(cache.index.lookup(indexKeyOfApiKey(a.secret))).toBeUndefined();
    expect(cache.index.lookup(indexKeyOfApiKey(b.secret))?.id).toBe(b.upsert.id);
    const rows = store.audit.list().filter((r) => r.revision === 4 || r.revision === 5);
    expect(rows.map((r) => [r.event, r.keyId, r.revision])).toEqual([
      ["key_upsert", b.upsert.id, 4],
      ["key_delete", a.upsert.id, 5],
    ]);
  });

  it("keeps the old state and revision when an apply fails mid-batch", () => {
    const a = makeKey();
    cache.applySnapshot({ revision: 10, orgId: "org_a", reason: SnapshotReason.NEW_GATEWAY, keys: [a.upsert] });
    const auditBefore = store.audit.list().length;
    const b = makeKey();
    const broken = { ...makeKey().upsert, keyHash: new Uint8Array(5) };

    expect(() =>
      cache.applyChanges([deleteChange(11, a.upsert.id), upsertChange(12, b.upsert), upsertChange(13, broken)]),
    ).toThrow(ApplyError);

    expect(cache.appliedRevision).toBe(10);
    expect(store.keys.all().map((k) => k.id)).toEqual([a.upsert.id]);
    expect(store.audit.list()).toHaveLength(auditBefore);
    expect(cache.index.lookup(indexKeyOfApiKey(a.secret))?.id).toBe(a.upsert.id);
    expect(cache.index.lookup(indexKeyOfApiKey(b.secret))).toBeUndefined();
  });

  it("keeps the old state when a snapshot violates a constraint", () => {
    const a = makeKey();
    cache.applySnapshot({ revision: 2, orgId: "org_a", reason: SnapshotReason.NEW_GATEWAY, keys: [a.upsert] });
    const b = makeKey();
    // Two ids with one hash: the UNIQUE index rejects the snapshot inside the transaction.
    const clash = { ...makeKey().upsert, keyHash: b.upsert.keyHash };

    expect(() => cache.applySnapshot({ revision: 8, orgId: "org_a", reason: SnapshotReason.COMPACTED, keys: [b.upsert, clash] })).toThrow();
    expect(cache.appliedRevision).toBe(2);
    expect(store.keys.all().map((k) => k.id)).toEqual([a.upsert.id]);
    expect(cache.index.size).toBe(1);
  });

  it("survives reopening the file", () => {
    const a = makeKey({ expiresAtMs: Date.parse("2030-01-01T00:00:00Z") });
    const b = makeKey();
    cache.applySnapshot({ revision: 20, orgId: "org_x", reason: SnapshotReason.NEW_GATEWAY, keys: [a.upsert] });
    cache.applyChanges([upsertChange(21, b.upsert)]);
    store.close();

    const loaded = open();
    expect(loaded).toEqual({ hasSnapshot: true, revision: 21, orgId: "org_x", keys: 2 });
    expect(cache.index.lookup(indexKeyOfApiKey(a.secret))).toMatchObject({
      id: a.upsert.id,
      prefix: a.upsert.keyPrefix,
      status: KeyStatus.ACTIVE,
      expiresAtMs: Date.parse("2030-01-01T00:00:00Z"),
    });
    expect(cache.index.lookup(indexKeyOfApiKey(b.secret))?.id).toBe(b.upsert.id);
  });

  it("an empty snapshot still makes the cache ready after a restart", () => {
    cache.applySnapshot({ revision: 1, orgId: "org_e", reason: SnapshotReason.NEW_GATEWAY, keys: [] });
    store.close();
    expect(open()).toEqual({ hasSnapshot: true, revision: 1, orgId: "org_e", keys: 0 });
  });
});

describe("planChangeBatch", () => {
  const k = makeKey().upsert;
  it("drops changes already applied and applies the rest", () => {
    const plan = planChangeBatch(5, [upsertChange(4, k), upsertChange(5, k), upsertChange(6, k), upsertChange(7, k)]);
    expect(plan.kind).toBe("apply");
    expect(plan.kind === "apply" && plan.changes.map((c) => Number(c.revision))).toEqual([6, 7]);
  });
  it("is a no-op when everything is old", () => {
    expect(planChangeBatch(5, [upsertChange(5, k)])).toEqual({ kind: "noop" });
  });
  it("refuses a gap", () => {
    expect(planChangeBatch(5, [upsertChange(7, k)])).toEqual({ kind: "gap", expected: 6, got: 7 });
    expect(planChangeBatch(5, [upsertChange(6, k), upsertChange(8, k)])).toEqual({ kind: "gap", expected: 7, got: 8 });
  });
});
