import { afterEach, describe, expect, it } from "vitest";
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { SnapshotReason } from "@tollgate/shared";
import { KeyIndex } from "../auth/key-index.js";
import { openStore, type GatewayStore } from "./store.js";
import { eventually, makeKey, tempDir, type TestKey } from "@tollgate/testkit";
import { KeyCache } from "./key-cache.js";

const KEYS = 10_000;
const R1 = 100;
const R2 = 250;

/** Shared control words between the test and the reader thread. */
const STOP = 0;
const OBSERVATIONS = 1;
const APPLYING = 2;

interface ReaderReport {
  old: number;
  new: number;
  duringApply: number;
  mixed: Array<{ count: number; revision: string | undefined; oldIds: number; newIds: number }>;
}

/**
 * Runs in a worker thread, on its own better-sqlite3 connection to the same
 * WAL file: reads count, ids and revision in one read transaction, over and
 * over, and classifies each observation as the old state, the new state, or a
 * mix (which must never happen).
 */
const READER = `
const { workerData, parentPort } = require("node:worker_threads");
const Database = require(workerData.sqlite);
const db = new Database(workerData.path, { readonly: true, fileMustExist: true });
db.pragma("busy_timeout = 5000");
const ctl = new Int32Array(workerData.control);
const oldIds = new Set(workerData.oldIds);
const newIds = new Set(workerData.newIds);
const count = db.prepare("SELECT count(*) AS n FROM keys").pluck();
const ids = db.prepare("SELECT id FROM keys").pluck();
const revision = db.prepare("SELECT value FROM meta WHERE key = 'revision'").pluck();
const observe = db.transaction(() => ({ n: count.get(), ids: ids.all(), rev: revision.get() }));
const report = { old: 0, new: 0, duringApply: 0, mixed: [] };
while (Atomics.load(ctl, ${STOP}) === 0) {
  const applying = Atomics.load(ctl, ${APPLYING}) === 1;
  const o = observe();
  let inOld = 0, inNew = 0;
  for (const id of o.ids) {
    if (oldIds.has(id)) inOld++;
    if (newIds.has(id)) inNew++;
  }
  if (o.rev === String(${R1}) && o.n === ${KEYS} && inOld === ${KEYS} && inNew === 0) report.old++;
  else if (o.rev === String(${R2}) && o.n === ${KEYS} && inNew === ${KEYS} && inOld === 0) report.new++;
  else report.mixed.push({ count: o.n, revision: o.rev, oldIds: inOld, newIds: inNew });
  if (applying) report.duringApply++;
  Atomics.add(ctl, ${OBSERVATIONS}, 1);
}
db.close();
parentPort.postMessage(report);
`;

describe("a 10,000-key snapshot replacing 10,000 other keys", () => {
  let dir: ReturnType<typeof tempDir>;
  let store: GatewayStore;
  afterEach(() => {
    store.close();
    dir.remove();
  });

  it("is seen whole or not at all, by another connection and by the in-memory index", async () => {
    dir = tempDir();
    store = openStore(dir.path);
    const index = new KeyIndex();
    const cache = new KeyCache(store, index, { now: () => Date.now() });
    const oldKeys: TestKey[] = Array.from({ length: KEYS }, () => makeKey());
    const newKeys: TestKey[] = Array.from({ length: KEYS }, () => makeKey());
    cache.applySnapshot({
      revision: R1,
      orgId: "org_a",
      reason: SnapshotReason.NEW_GATEWAY,
      keys: oldKeys.map((k) => k.upsert),
    });

    // The in-memory index, sampled from inside the SQLite transaction: entirely old until the commit.
    const indexState = () => {
      let olds = 0;
      let news = 0;
      for (const k of oldKeys) if (index.getById(k.upsert.id)) olds++;
      for (const k of newKeys) if (index.getById(k.upsert.id)) news++;
      return { olds, news, size: index.size };
    };
    const samplesInsideTx: Array<ReturnType<typeof indexState>> = [];
    const insert = store.audit.insert;
    let writes = 0;
    store.audit.insert = (entry) => {
      if (writes++ % 2_500 === 0) samplesInsideTx.push(indexState());
      insert(entry);
    };

    const control = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
    const worker = new Worker(READER, {
      eval: true,
      workerData: {
        sqlite: createRequire(import.meta.url).resolve("better-sqlite3"),
        path: store.path,
        control: control.buffer,
        oldIds: oldKeys.map((k) => k.upsert.id),
        newIds: newKeys.map((k) => k.upsert.id),
      },
    });
    const report = new Promise<ReaderReport>((resolve, reject) => {
      worker.once("message", (m: ReaderReport) => resolve(m));
      worker.once("error", reject);
    });
    try {
      await eventually(() => (Atomics.load(control, OBSERVATIONS) >= 3 ? true : undefined));

      Atomics.store(control, APPLYING, 1);
      const result = cache.applySnapshot({
        revision: R2,
        orgId: "org_a",
        reason: SnapshotReason.COMPACTED,
        keys: newKeys.map((k) => k.upsert),
      });
      Atomics.store(control, APPLYING, 0);
      const afterApply = indexState();

      const seen = Atomics.load(control, OBSERVATIONS);
      await eventually(() => (Atomics.load(control, OBSERVATIONS) >= seen + 3 ? true : undefined));
      Atomics.store(control, STOP, 1);
      const r = await report;

      expect(result).toMatchObject({ revision: R2, added: KEYS, removed: KEYS, keys: KEYS });
      expect(r.mixed).toEqual([]);
      expect(r.old).toBeGreaterThanOrEqual(3);
      expect(r.new).toBeGreaterThanOrEqual(3);
      expect(r.old + r.new).toBeGreaterThanOrEqual(6);

      expect(samplesInsideTx.length).toBeGreaterThanOrEqual(4);
      for (const s of samplesInsideTx) expect(s).toEqual({ olds: KEYS, news: 0, size: KEYS });
      expect(afterApply).toEqual({ olds: 0, news: KEYS, size: KEYS });
      console.info(
        `reader: ${r.old} old, ${r.new} new, ${r.duringApply} while the snapshot was being applied, 0 mixed`,
      );
    } finally {
      Atomics.store(control, STOP, 1);
      await worker.terminate();
    }
  });
});
