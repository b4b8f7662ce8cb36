import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { create } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ChangeSchema, ModelPriceSchema, SnapshotReason, type Change, type ModelPrice } from "@tollgate/shared";
import { KeyIndex } from "../auth/key-index.js";
import { migrate, migrations } from "../db/migrations.js";
import { openStore, type GatewayStore } from "../db/store.js";
import { KeyCache } from "../db/key-cache.js";
import { ApplyError } from "../db/synced-records.js";
import { makeKey, tempDir, upsertChange } from "@tollgate/testkit";

const clock = { now: () => Date.parse("2025-06-01T12:00:00Z") };

function price(
  provider: string,
  model: string,
  input: number,
  output: number,
  extra: Partial<ModelPrice> = {},
): ModelPrice {
  return create(ModelPriceSchema, {
    provider,
    model,
    inputUsdPerMtok: input,
    outputUsdPerMtok: output,
    source: "default",
    ...extra,
  });
}

function priceUpsert(revision: number, p: ModelPrice): Change {
  return create(ChangeSchema, { revision: BigInt(revision), op: { case: "modelPriceUpsert", value: p } });
}

function priceDelete(revision: number, provider: string, model: string): Change {
  return create(ChangeSchema, {
    revision: BigInt(revision),
    op: { case: "modelPriceDelete", value: { provider, model } },
  });
}

describe("KeyCache: the price table", () => {
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

  it("a snapshot replaces the table, deltas change it, and both survive a restart", () => {
    cache.applySnapshot({
      revision: 10,
      orgId: "org_p",
      reason: SnapshotReason.NEW_GATEWAY,
      keys: [],
      modelPrices: [price("openai", "gpt-4o", 2.5, 10, { cacheReadUsdPerMtok: 1.25 }), price("openai", "o3", 2, 8)],
    });
    expect(cache.prices.lookup("openai", "gpt-4o-2024-08-06")).toMatchObject({
      inputUsdPerMtok: 2.5,
      cacheReadUsdPerMtok: 1.25,
      cacheWriteUsdPerMtok: null,
    });

    const result = cache.applyChanges([
      priceUpsert(11, price("openai", "gpt-4o", 1, 2, { source: "override" })),
      priceDelete(12, "openai", "o3"),
      upsertChange(13, makeKey().upsert),
    ]);
    expect(result).toMatchObject({ revision: 13, upserts: 1, modelPriceChanges: 2 });
    expect(cache.prices.lookup("openai", "gpt-4o")).toMatchObject({ inputUsdPerMtok: 1, source: "override" });
    expect(cache.prices.lookup("openai", "o3")).toBeUndefined();
    const events = store.audit.list().map((a) => a.event);
    expect(events).toEqual(expect.arrayContaining(["model_price_upsert", "model_price_delete"]));

    store.close();
    expect(open()).toMatchObject({ revision: 13, modelPrices: 1 });
    expect(cache.prices.lookup("openai", "gpt-4o")).toMatchObject({
      inputUsdPerMtok: 1,
      outputUsdPerMtok: 2,
      source: "override",
    });

    // A later snapshot is the whole table: what it lacks is gone.
    cache.applySnapshot({
      revision: 14,
      orgId: "org_p",
      reason: SnapshotReason.COMPACTED,
      keys: [],
      modelPrices: [price("anthropic", "claude-*", 3, 15)],
    });
    expect(cache.prices.lookup("openai", "gpt-4o")).toBeUndefined();
    expect(store.modelPrices.all().map((p) => `${p.provider}/${p.model}`)).toEqual(["anthropic/claude-*"]);
  });

  it("refuses a price it cannot use and keeps the previous state, on disk and in memory", () => {
    cache.applyChanges([priceUpsert(1, price("openai", "gpt-4o", 2.5, 10))]);
    expect(() =>
      cache.applyChanges([
        priceUpsert(2, price("openai", "gpt-4o", 1, 1)),
        priceUpsert(3, price("openai", "o3", -1, 8)),
      ]),
    ).toThrow(ApplyError);
    expect(() =>
      cache.applySnapshot({
        revision: 5,
        orgId: "org_p",
        reason: SnapshotReason.NEW_GATEWAY,
        keys: [],
        modelPrices: [price("openai", "x", Number.POSITIVE_INFINITY, 1)],
      }),
    ).toThrow(/finite/);
    expect(cache.appliedRevision).toBe(1);
    expect(cache.prices.lookup("openai", "gpt-4o")?.inputUsdPerMtok).toBe(2.5);
    expect(store.modelPrices.all()).toHaveLength(1);
  });
});

describe("a cache written before prices were synced", () => {
  it("asks for a full snapshot, since its revision moved past price changes it skipped", () => {
    const dir = tempDir();
    try {
      const old = new BetterSqlite3(join(dir.path, "gateway.db"));
      migrate(
        old,
        migrations.filter((m) => m.name < "2025-04-01"),
      );
      old.prepare("INSERT INTO meta (key, value) VALUES ('revision', '40'), ('org_id', 'org_old')").run();
      old.close();
      const store = openStore(dir.path);
      expect(store.migrated).toEqual(migrations.filter((m) => m.name >= "2025-04-01").map((m) => m.name));
      expect(store.migrated[0]).toBe("2025-04-01T00:00:00_model-prices");
      expect(new KeyCache(store, new KeyIndex(), clock).load()).toMatchObject({ revision: 40, resyncRequired: true });
      store.close();
    } finally {
      dir.remove();
    }
  });
});
