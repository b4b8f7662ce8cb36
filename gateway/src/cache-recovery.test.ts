import { afterEach, describe, expect, it } from "vitest";
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { ConfigError } from "@tollgate/shared";
import { createGateway } from "./index.js";
import { openStoreWithRecovery } from "./db/recovery.js";
import { META } from "./db/meta-repository.js";
import {
  capturedLogger,
  endpoints,
  eventually,
  FakeControlPlane,
  makeKey,
  tempDir,
  upsertChange,
} from "@tollgate/testkit";
import { testConfig } from "../test/test-config.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function dir() {
  const d = tempDir();
  cleanups.push(() => d.remove());
  return d.path;
}

async function controlPlane(...args: ConstructorParameters<typeof FakeControlPlane>) {
  const cp = new FakeControlPlane(...args);
  await cp.start();
  cleanups.push(() => cp.stop());
  return cp;
}

/** Runs a gateway until it has applied a snapshot with some keys and a few deltas, then stops it. */
async function writeRealCache(dataDir: string): Promise<{ gatewayId: string }> {
  const keys = Array.from({ length: 50 }, () => makeKey());
  const cp = await controlPlane(
    keys.map((k) => k.upsert),
    3,
  );
  const gw = createGateway(testConfig(dataDir, cp.url, cp.token), { logger: capturedLogger().logger });
  await gw.start();
  await eventually(() => (gw.context.syncState.appliedRevision === 3 ? true : undefined));
  cp.push([upsertChange(4, makeKey().upsert), upsertChange(5, makeKey().upsert)]);
  await eventually(() => (gw.context.syncState.appliedRevision === 5 ? true : undefined));
  const gatewayId = gw.context.gatewayId;
  await gw.stop();
  await cp.stop();
  return { gatewayId };
}

const damages: Array<[string, (path: string) => void]> = [
  ["truncated to half its size", (path) => truncateSync(path, Math.floor(statSync(path).size / 2))],
  [
    "with garbage over its header",
    (path) => {
      const fd = openSync(path, "r+");
      writeSync(fd, Buffer.alloc(100, "garbage!"), 0, 100, 0);
      closeSync(fd);
    },
  ],
];

describe("a damaged key cache at boot", () => {
  for (const [what, damage] of damages) {
    it(`recovers from a cache ${what}: moves it aside, starts empty and not ready, then serves the snapshot`, async () => {
      const dataDir = dir();
      await writeRealCache(dataDir);
      const dbPath = join(dataDir, "gateway.db");
      expect(statSync(dbPath).size).toBeGreaterThan(0);
      damage(dbPath);

      const fresh = makeKey();
      const cp = await controlPlane([fresh.upsert], 9);
      cp.holdSubscriptions();
      const { logger, lines } = capturedLogger();
      const gw = createGateway(testConfig(dataDir, cp.url, cp.token), {
        logger,
        sync: { baseDelayMs: 10, maxDelayMs: 50 },
      });
      cleanups.push(() => gw.stop());
      const api = endpoints(await gw.start());

      // Not ready while no snapshot has arrived: the damaged state was not trusted.
      const before = await api.readyz();
      expect(before.status).toBe(503);
      expect(before.body).toMatchObject({
        ready: false,
        reason: "no_snapshot",
        keys: 0,
        applied_revision: 0,
        cache_recovered: true,
      });

      const moved = readdirSync(dataDir).filter((f) => /^gateway\.db\.corrupt-\d{8}T\d{6}Z$/.test(f));
      expect(moved).toHaveLength(1);
      const movedPath = join(dataDir, moved[0]!);
      const error = lines.find((l) => l.level === 50 && String(l.msg).startsWith("the key cache at"));
      expect(String(error?.msg)).toMatch(
        new RegExp(
          `^the key cache at ${dbPath.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} is damaged \\((SQLITE_\\w+|integrity check failed)[^)]*.*\\); moved it to ${movedPath.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} and starting with an empty cache: the control plane will send a full snapshot$`,
        ),
      );
      expect(await api.metrics()).toMatch(/^tollgate_gateway_cache_recovered_total 1$/m);

      cp.releaseSubscriptions();
      await eventually(async () => ((await api.readyz()).status === 200 ? true : undefined));
      expect((await api.readyz()).body).toMatchObject({
        ready: true,
        source: "control_plane",
        applied_revision: 9,
        keys: 1,
      });
      expect(cp.subscriptions.at(-1)?.lastRevision).toBe(0n);
      expect((await api.chat(fresh.secret)).status).toBe(200);

      const audit = gw.context.db.audit.list();
      expect(audit[0]).toMatchObject({ event: "cache_recovered", detail: { path: dbPath, moved_to: movedPath } });
      expect(audit.filter((r) => r.event === "cache_recovered")).toHaveLength(1);
      expect(audit.some((r) => r.event === "snapshot_applied" && r.revision === 9)).toBe(true);
      expect(existsSync(movedPath)).toBe(true);
    });
  }

  it("keeps the gateway id when the damaged file still holds it, and moves -wal and -shm alongside", () => {
    const dataDir = dir();
    const path = join(dataDir, "gateway.db");
    // A database from something else: the initial migration cannot create its tables.
    const other = new BetterSqlite3(path);
    other.pragma("journal_mode = WAL");
    other.exec(
      `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO meta VALUES ('gateway_id', 'gw_01jz0000000000000000000000')`,
    );
    other.close();
    writeFileSync(`${path}-wal`, "not a wal");
    writeFileSync(`${path}-shm`, "not a shm");

    const { store, probed, recovery } = openStoreWithRecovery(dataDir, Date.parse("2025-06-01T12:00:00Z"), (s) =>
      s.keys.count(),
    );
    try {
      expect(recovery).toMatchObject({
        path,
        movedTo: `${path}.corrupt-20250601T120000Z`,
        reason: expect.stringContaining("schema migration failed"),
        salvagedGatewayId: "gw_01jz0000000000000000000000",
      });
      expect(probed).toBe(0);
      expect(store.meta.get(META.gatewayId)).toBe("gw_01jz0000000000000000000000");
      for (const suffix of ["", "-wal", "-shm"])
        expect(existsSync(`${path}.corrupt-20250601T120000Z${suffix}`)).toBe(true);
    } finally {
      store.close();
    }
  });

  it("does not touch a healthy cache, and still stops on an environment problem", () => {
    const dataDir = dir();
    const first = openStoreWithRecovery(dataDir, Date.now(), () => undefined);
    first.store.meta.set("x", "1");
    first.store.close();
    const again = openStoreWithRecovery(dataDir, Date.now(), (s) => s.meta.get("x"));
    again.store.close();
    expect(again).toMatchObject({ probed: "1", recovery: null });
    expect(readdirSync(dataDir).some((f) => f.includes("corrupt"))).toBe(false);

    const notADir = join(dir(), "file");
    writeFileSync(notADir, "x");
    expect(() => openStoreWithRecovery(notADir, Date.now(), () => undefined)).toThrow(ConfigError);
  });
});
