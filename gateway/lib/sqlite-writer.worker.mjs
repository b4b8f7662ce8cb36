// @ts-check
// The gateway's SQLite writer thread (see gateway/src/db/sqlite-writer.ts).
//
// Plain JavaScript so that the same file runs under `node dist/main.js` and
// under vitest (which runs the TypeScript sources but cannot start a worker
// from a .ts file). It knows no table: the main thread sends each SQL
// statement once, then batches of (statement, positional parameters), and
// every batch is one transaction. All SQL lives in the repositories.

import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

/** @typedef {{ id: number, defs?: Array<[number, string]>, stmts: number[], params: unknown[][] }} Batch */
/** @typedef {{ id: number, ok: true } | { id: number, ok: false, message: string, code: string | undefined }} Reply */

if (!parentPort) throw new Error("sqlite-writer.worker.mjs runs as a worker thread only");
const port = parentPort;
const { path, busyRetryMs, busyTimeoutMs } =
  /** @type {{ path: string, busyRetryMs: number, busyTimeoutMs: number }} */ (workerData);

const db = new Database(path);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = NORMAL");
db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
// This connection only appends (request and audit log rows by rowid and time,
// the usage outbox by seq) and updates a few small rows, so the pages it
// touches again are the B-trees' right edges. better-sqlite3 builds SQLite
// with a 16 MB page cache per connection; left there, every page ever written
// stays cached and the gateway's RSS grows by up to 16 MB under sustained load.
db.pragma("cache_size = -2048");

/** @type {Map<number, import("better-sqlite3").Statement>} */
const statements = new Map();

const write = db.transaction((/** @type {Batch} */ batch) => {
  const { stmts, params } = batch;
  for (let i = 0; i < stmts.length; i++) {
    const stmt = statements.get(/** @type {number} */ (stmts[i]));
    if (!stmt) throw new Error(`statement ${stmts[i]} was never defined`);
    stmt.run(/** @type {unknown[]} */ (params[i]));
  }
});

const sleep = new Int32Array(new SharedArrayBuffer(4));

/**
 * Another connection (the main thread's key sync) may hold the write lock for
 * longer than busy_timeout while it applies a large snapshot: wait it out
 * rather than drop the batch, up to busyRetryMs.
 */
function writeWithRetry(/** @type {Batch} */ batch) {
  const giveUpAt = Date.now() + busyRetryMs;
  for (;;) {
    try {
      write.immediate(batch);
      return;
    } catch (err) {
      const code = /** @type {{ code?: unknown }} */ (err).code;
      if ((code !== "SQLITE_BUSY" && code !== "SQLITE_LOCKED") || Date.now() >= giveUpAt) throw err;
      Atomics.wait(sleep, 0, 0, 50);
    }
  }
}

port.on("message", (/** @type {Batch | "close"} */ msg) => {
  if (msg === "close") {
    db.close();
    port.close();
    return;
  }
  /** @type {Reply} */
  let reply;
  try {
    if (msg.defs) for (const [id, sql] of msg.defs) statements.set(id, db.prepare(sql));
    writeWithRetry(msg);
    reply = { id: msg.id, ok: true };
  } catch (err) {
    const e = /** @type {{ message?: unknown, code?: unknown }} */ (err);
    reply = {
      id: msg.id,
      ok: false,
      message: String(e.message),
      code: typeof e.code === "string" ? e.code : undefined,
    };
  }
  port.postMessage(reply);
});
