import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { create } from "@bufbuild/protobuf";
import { KeyStatus, SigningKeySchema, SnapshotReason, ed25519PublicKeyToRaw } from "@tollgate/shared";
import { openStore, type GatewayStore } from "./store.js";
import { migrate, migrations } from "./migrations.js";
import { KeyIndex, indexKeyOfApiKey } from "../auth/key-index.js";
import { modelAllowed } from "../auth/model-matcher.js";
import { ipInList } from "@tollgate/shared";
import {
  deleteChange,
  makeKey,
  makeSigningKey,
  rotateKey,
  signingKeyChange,
  tempDir,
  upsertChange,
  withFields,
} from "@tollgate/testkit";
import { planChangeBatch } from "../background/change-order.js";
import { KeyCache } from "./key-cache.js";
import { ApplyError } from "./synced-records.js";

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
    expect(cache.load()).toEqual({
      hasSnapshot: false,
      revision: 0,
      orgId: "",
      keys: 0,
      signingKeys: 0,
      modelPrices: 0,
      resyncRequired: false,
    });
  });

  it("changes nothing while a snapshot arrives in chunks, keeps the old state when it never ends, and applies it whole", () => {
    const old = makeKey();
    cache.applySnapshot({ revision: 2, orgId: "org_a", reason: SnapshotReason.NEW_GATEWAY, keys: [old.upsert] });
    const keys = [makeKey(), makeKey(), makeKey()];
    const reader = new BetterSqlite3(join(dir.path, "gateway.db"), { readonly: true });
    const seen = () => ({
      rows: (reader.prepare("select id from keys order by id").all() as { id: string }[]).map((r) => r.id),
      served: [old, ...keys].filter((k) => cache.index.lookup(indexKeyOfApiKey(k.secret)) !== undefined).length,
      revision: cache.appliedRevision,
    });
    try {
      const before = seen();
      expect(before).toEqual({ rows: [old.upsert.id], served: 1, revision: 2 });
      // A snapshot whose stream breaks after two chunks is dropped: nothing of it was written or served.
      const broken = cache.beginSnapshot({ revision: 7, orgId: "org_a", reason: SnapshotReason.COMPACTED });
      broken.add({ keys: [keys[0]!.upsert] });
      broken.add({ keys: [keys[1]!.upsert] });
      expect(seen()).toEqual(before);
      // The next one, received in chunks, is seen whole at its commit.
      const next = cache.beginSnapshot({ revision: 8, orgId: "org_a", reason: SnapshotReason.COMPACTED });
      for (const k of keys) {
        next.add({ keys: [k.upsert] });
        expect(seen()).toEqual(before);
      }
      expect(cache.commitSnapshot(next)).toMatchObject({ revision: 8, added: 3, removed: 1, keys: 3 });
      expect(seen()).toEqual({ rows: keys.map((k) => k.upsert.id).sort(), served: 3, revision: 8 });
      // A key repeated in a later chunk is refused when that chunk arrives.
      const repeated = cache.beginSnapshot({ revision: 9, orgId: "org_a", reason: SnapshotReason.COMPACTED });
      repeated.add({ keys: [keys[0]!.upsert] });
      expect(() => repeated.add({ keys: [keys[0]!.upsert] })).toThrow(ApplyError);
    } finally {
      reader.close();
    }
  });

  it("replaces the whole cache with a snapshot, with its revision and org", () => {
    const a = makeKey();
    const b = makeKey();
    cache.applySnapshot({
      revision: 5,
      orgId: "org_a",
      reason: SnapshotReason.NEW_GATEWAY,
      keys: [a.upsert, b.upsert],
    });
    const c = makeKey();
    const result = cache.applySnapshot({
      revision: 9,
      orgId: "org_a",
      reason: SnapshotReason.COMPACTED,
      keys: [b.upsert, c.upsert],
    });

    expect(result).toMatchObject({ revision: 9, added: 1, removed: 1, changed: 0, unchanged: 1, keys: 2 });
    expect(cache.appliedRevision).toBe(9);
    expect(
      store.keys
        .all()
        .map((k) => k.id)
        .sort(),
    ).toEqual([b.upsert.id, c.upsert.id].sort());
    expect(cache.index.lookup(indexKeyOfApiKey(a.secret))).toBeUndefined();
    expect(cache.index.lookup(indexKeyOfApiKey(c.secret))?.id).toBe(c.upsert.id);
  });

  it("audits a first load (nothing cached) with one summary row, not one row per key", () => {
    const keys = [makeKey(), makeKey(), makeKey()];
    const result = cache.applySnapshot({
      revision: 3,
      orgId: "org_a",
      reason: SnapshotReason.NEW_GATEWAY,
      keys: keys.map((k) => k.upsert),
    });
    expect(result).toMatchObject({ added: 3, keys: 3 });
    expect(store.audit.list()).toEqual([
      expect.objectContaining({
        event: "snapshot_applied",
        keyId: null,
        revision: 3,
        detail: expect.objectContaining({ reason: "NEW_GATEWAY", added: 3, first_load: true }),
      }),
    ]);
    // Each key still says at which revision it was written.
    const written = store.db.prepare("SELECT DISTINCT updated_revision AS r FROM keys").all();
    expect(written).toEqual([{ r: 3 }]);
  });

  it("shares one policy object between keys with equal policies, after a snapshot and after a restart", () => {
    const [a, b] = [makeKey({ allowedModels: ["gpt-4o*"] }), makeKey({ allowedModels: ["gpt-4o*"] })];
    const c = makeKey({ allowedModels: ["claude-*"] });
    cache.applySnapshot({
      revision: 1,
      orgId: "org_a",
      reason: SnapshotReason.NEW_GATEWAY,
      keys: [a, b, c].map((k) => k.upsert),
    });
    const policies = () => [a, b, c].map((k) => cache.index.getById(k.upsert.id)!.policy);
    for (const [pa, pb, pc] of [policies(), (store.close(), open(), policies())]) {
      expect(pa).toBe(pb);
      expect(pc).not.toBe(pa);
      expect(pc!.allowedModels).toEqual(["claude-*"]);
    }
  });

  it("writes audit rows for the snapshot diff only, never a hash", () => {
    const a = makeKey();
    const b = makeKey();
    const unchanged = makeKey();
    cache.applySnapshot({
      revision: 1,
      orgId: "org_a",
      reason: SnapshotReason.NEW_GATEWAY,
      keys: [a.upsert, b.upsert, unchanged.upsert],
    });
    const before = store.audit.list().length;

    const bInactive = { ...b.upsert, status: KeyStatus.INACTIVE };
    const c = makeKey();
    cache.applySnapshot({
      revision: 7,
      orgId: "org_a",
      reason: SnapshotReason.COMPACTED,
      keys: [bInactive, unchanged.upsert, c.upsert],
    });

    const rows = store.audit.list().slice(before);
    const byKey = Object.fromEntries(rows.filter((r) => r.keyId).map((r) => [r.keyId, r]));
    expect(rows).toHaveLength(4);
    expect(byKey[a.upsert.id]).toMatchObject({ event: "key_delete", revision: 7, detail: { change: "removed" } });
    expect(byKey[b.upsert.id]).toMatchObject({
      event: "key_upsert",
      revision: 7,
      detail: { change: "changed", fields: ["status"], status: "INACTIVE" },
    });
    expect(byKey[c.upsert.id]).toMatchObject({ event: "key_upsert", revision: 7, detail: { change: "added" } });
    expect(byKey[unchanged.upsert.id]).toBeUndefined();
    const summary = rows.find((r) => r.event === "snapshot_applied");
    expect(summary).toMatchObject({
      revision: 7,
      detail: { reason: "COMPACTED", added: 1, changed: 1, removed: 1, unchanged: 1 },
    });

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

    expect(result).toEqual({ revision: 5, upserts: 1, deletes: 1, signingKeyUpserts: 0, modelPriceChanges: 0 });
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

    expect(() =>
      cache.applySnapshot({ revision: 8, orgId: "org_a", reason: SnapshotReason.COMPACTED, keys: [b.upsert, clash] }),
    ).toThrow();
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
    expect(loaded).toEqual({
      hasSnapshot: true,
      revision: 21,
      orgId: "org_x",
      keys: 2,
      signingKeys: 0,
      modelPrices: 0,
      resyncRequired: false,
    });
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
    expect(open()).toEqual({
      hasSnapshot: true,
      revision: 1,
      orgId: "org_e",
      keys: 0,
      signingKeys: 0,
      modelPrices: 0,
      resyncRequired: false,
    });
  });
});

describe("KeyCache: scopes, rotation grace and signing keys", () => {
  let dir: ReturnType<typeof tempDir>;
  let store: GatewayStore;
  let cache: KeyCache;
  const NOW = clock.now();

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

  it("stores scopes, limits, metadata and a grace period, and compiles them again after a restart", () => {
    const original = makeKey({
      allowedProviders: ["openai"],
      allowedModels: ["gpt-4o*", "o1"],
      ipAllowlist: ["10.0.0.0/8", "2001:db8::/32"],
      metadata: { team: "backend", env: "production" },
      rpmLimit: 60,
      tpmLimit: 100_000,
      budgetUsd: 12.5,
    });
    const rotated = rotateKey(original, NOW + 60_000);
    cache.applySnapshot({ revision: 1, orgId: "org_s", reason: SnapshotReason.NEW_GATEWAY, keys: [rotated.upsert] });
    store.close();
    open();

    const record = cache.index.lookup(indexKeyOfApiKey(rotated.secret), NOW)!;
    expect(record).toMatchObject({
      id: original.upsert.id,
      policy: {
        rpmLimit: 60,
        tpmLimit: 100_000,
        budgetUsd: 12.5,
        allowedProviders: ["openai"],
        allowedModels: ["gpt-4o*", "o1"],
      },
      metadata: { team: "backend", env: "production" },
      metadataJson: '{"team":"backend","env":"production"}',
    });
    expect(record.allowedProviders?.has("openai")).toBe(true);
    expect(modelAllowed(record.allowedModels, "gpt-4o-mini")).toBe(true);
    expect(modelAllowed(record.allowedModels, "gpt-4")).toBe(false);
    expect(ipInList(record.ipAllowlist!, "::ffff:10.1.1.1")).toBe(true);
    expect(ipInList(record.ipAllowlist!, "2001:db8::5")).toBe(true);
    expect(ipInList(record.ipAllowlist!, "192.0.2.1")).toBe(false);
    expect(cache.index.lookup(indexKeyOfApiKey(original.secret), NOW + 59_999)?.id).toBe(original.upsert.id);
    expect(cache.index.lookup(indexKeyOfApiKey(original.secret), NOW + 60_000)).toBeUndefined();
    expect(cache.index.size).toBe(1);
  });

  it("drops the previous secret when a later upsert carries none, in SQLite and in memory", () => {
    const original = makeKey();
    const rotated = rotateKey(original, NOW + 60_000);
    cache.applySnapshot({ revision: 1, orgId: "org_s", reason: SnapshotReason.NEW_GATEWAY, keys: [rotated.upsert] });
    expect(cache.index.lookup(indexKeyOfApiKey(original.secret), NOW)?.id).toBe(original.upsert.id);
    const ended = withFields(rotated.upsert, { previousKeyHash: new Uint8Array(0), previousKeyExpiresAt: undefined });
    cache.applyChanges([upsertChange(2, ended)]);
    expect(cache.index.lookup(indexKeyOfApiKey(original.secret), NOW)).toBeUndefined();
    expect(store.keys.get(original.upsert.id)).toMatchObject({ previousKeyHash: null, previousKeyExpiresAtMs: null });
    store.close();
    open();
    expect(cache.index.lookup(indexKeyOfApiKey(original.secret), NOW)).toBeUndefined();
    expect(cache.index.lookup(indexKeyOfApiKey(rotated.secret), NOW)?.id).toBe(original.upsert.id);
  });

  it("audits a scope change in a snapshot as a policy change", () => {
    const a = makeKey();
    cache.applySnapshot({ revision: 1, orgId: "org_s", reason: SnapshotReason.NEW_GATEWAY, keys: [a.upsert] });
    const scoped = withFields(a.upsert, { allowedModels: ["gpt-4o*"], metadataJson: '{"env":"prod"}' });
    const result = cache.applySnapshot({
      revision: 2,
      orgId: "org_s",
      reason: SnapshotReason.COMPACTED,
      keys: [scoped],
    });
    expect(result).toMatchObject({ changed: 1, unchanged: 0 });
    const row = store.audit.list().find((r) => r.revision === 2 && r.event === "key_upsert");
    expect(row?.detail).toMatchObject({
      change: "changed",
      fields: ["policy", "metadata"],
      allowed_models: ["gpt-4o*"],
    });
    expect(
      cache.applySnapshot({ revision: 3, orgId: "org_s", reason: SnapshotReason.COMPACTED, keys: [scoped] }),
    ).toMatchObject({
      unchanged: 1,
    });
  });

  it("replaces signing keys with a snapshot, adds them with deltas, and keeps them across a restart", () => {
    const [one, two, three] = [makeSigningKey(), makeSigningKey(), makeSigningKey()];
    cache.applySnapshot({
      revision: 1,
      orgId: "org_s",
      reason: SnapshotReason.NEW_GATEWAY,
      keys: [],
      signingKeys: [one.message, two.message],
    });
    expect(cache.index.publicKeyFor(one.id)).toBeDefined();
    expect(cache.index.orgId).toBe("org_s");
    const result = cache.applySnapshot({
      revision: 5,
      orgId: "org_s",
      reason: SnapshotReason.COMPACTED,
      keys: [],
      signingKeys: [two.message],
    });
    expect(result.signingKeys).toBe(1);
    expect(cache.index.publicKeyFor(one.id)).toBeUndefined();
    expect(cache.applyChanges([signingKeyChange(6, three.message)])).toEqual({
      revision: 6,
      upserts: 0,
      deletes: 0,
      signingKeyUpserts: 1,
      modelPriceChanges: 0,
    });
    expect(store.audit.list().at(-1)).toMatchObject({
      event: "signing_key_upsert",
      revision: 6,
      detail: { signing_key_id: three.id },
    });
    store.close();

    expect(open()).toMatchObject({ revision: 6, orgId: "org_s", signingKeys: 2 });
    expect(cache.index.publicKeyFor(one.id)).toBeUndefined();
    for (const k of [two, three]) {
      expect(ed25519PublicKeyToRaw(cache.index.publicKeyFor(k.id)!)).toEqual(Buffer.from(k.message.publicKey));
    }
  });

  it("refuses keys and signing keys it could not enforce, keeping the old state", () => {
    const a = makeKey();
    const good = makeSigningKey();
    cache.applySnapshot({
      revision: 1,
      orgId: "org_s",
      reason: SnapshotReason.NEW_GATEWAY,
      keys: [a.upsert],
      signingKeys: [good.message],
    });
    const cases: Array<[Parameters<KeyCache["applyChanges"]>[0], RegExp]> = [
      [
        [upsertChange(2, withFields(a.upsert, { ipAllowlist: ["10.0.0.0/8", "intranet"] }))],
        /ip_allowlist entry "intranet"/,
      ],
      [[upsertChange(2, withFields(a.upsert, { metadataJson: "[1,2]" }))], /metadata_json is not a JSON object/],
      [[upsertChange(2, withFields(a.upsert, { metadataJson: "{oops" }))], /metadata_json is not valid JSON/],
      [
        [upsertChange(2, withFields(a.upsert, { previousKeyHash: new Uint8Array(7) }))],
        /previous_key_hash must be a 32-byte/,
      ],
      [
        [signingKeyChange(2, create(SigningKeySchema, { id: "sk_bad", publicKey: new Uint8Array(31) }))],
        /public_key must be a raw 32-byte/,
      ],
    ];
    for (const [changes, message] of cases) {
      expect(() => cache.applyChanges(changes)).toThrow(ApplyError);
      expect(() => cache.applyChanges(changes)).toThrow(message);
    }
    expect(() =>
      cache.applySnapshot({
        revision: 9,
        orgId: "org_s",
        reason: SnapshotReason.COMPACTED,
        keys: [],
        signingKeys: [create(SigningKeySchema, { id: "sk_bad", publicKey: new Uint8Array(3) })],
      }),
    ).toThrow(ApplyError);
    expect(cache.appliedRevision).toBe(1);
    expect(cache.index.getById(a.upsert.id)?.ipAllowlist).toBeNull();
    expect(cache.index.publicKeyFor(good.id)).toBeDefined();
    expect(store.signingKeys.all().map((k) => k.id)).toEqual([good.id]);
  });
});

describe("KeyCache: a cache written by an older release", () => {
  it("is served at boot but asks for a full snapshot, which clears the request", () => {
    const dir = tempDir();
    try {
      // The schema and content an older gateway left behind.
      const old = new BetterSqlite3(join(dir.path, "gateway.db"));
      migrate(old, migrations.slice(0, 1));
      const k = makeKey();
      old.prepare("INSERT INTO meta (key, value) VALUES ('revision', '7'), ('org_id', 'org_old')").run();
      old
        .prepare(
          "INSERT INTO keys (id, key_hash, key_prefix, name, user_id, team_id, status, expires_at_ms, created_at_ms, updated_revision) VALUES (?, ?, ?, ?, ?, '', 1, NULL, 0, 7)",
        )
        .run(k.upsert.id, Buffer.from(k.upsert.keyHash), k.upsert.keyPrefix, k.upsert.name, k.upsert.userId);
      old.close();

      let store = openStore(dir.path);
      let cache = new KeyCache(store, new KeyIndex(), clock);
      // Every migration after the initial one ran on the old file.
      expect(store.migrated).toEqual(migrations.slice(1).map((m) => m.name));
      expect(cache.load()).toMatchObject({ hasSnapshot: true, revision: 7, keys: 1, resyncRequired: true });
      expect(cache.index.lookup(indexKeyOfApiKey(k.secret))).toMatchObject({
        id: k.upsert.id,
        allowedModels: null,
        metadata: null,
      });
      const scoped = withFields(k.upsert, { allowedModels: ["gpt-4o"] });
      cache.applySnapshot({ revision: 8, orgId: "org_old", reason: SnapshotReason.NEW_GATEWAY, keys: [scoped] });
      store.close();

      store = openStore(dir.path);
      cache = new KeyCache(store, new KeyIndex(), clock);
      expect(cache.load()).toMatchObject({ revision: 8, resyncRequired: false });
      expect(cache.index.lookup(indexKeyOfApiKey(k.secret))?.policy.allowedModels).toEqual(["gpt-4o"]);
      store.close();
    } finally {
      dir.remove();
    }
  });

  it("a fresh cache needs no resync", () => {
    const dir = tempDir();
    try {
      const store = openStore(dir.path);
      expect(new KeyCache(store, new KeyIndex(), clock).load().resyncRequired).toBe(false);
      store.close();
    } finally {
      dir.remove();
    }
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
