import { afterEach, describe, expect, it } from "vitest";
import { capturedLogger, tempDir } from "@tollgate/testkit";
import { LogWriter } from "./request-log-writer.js";
import type { RequestLogEntry } from "./request-log-repository.js";
import { openStore, type GatewayStore } from "./store.js";

function entry(requestId: string, overrides: Partial<RequestLogEntry> = {}): RequestLogEntry {
  return {
    at: "2026-11-23T01:00:00.000Z",
    requestId,
    keyId: "key_1",
    model: "gpt-4o-mini",
    provider: "openai",
    status: 200,
    promptTokens: 9,
    completionTokens: 5,
    totalTokens: 14,
    cacheReadTokens: null,
    cacheWriteTokens: null,
    attempts: [{ provider: "openai", status: 200, latencyMs: 1.5 }],
    latencyMs: 2.25,
    stream: false,
    error: null,
    metadata: '{"team":"a"}',
    ephemeral: false,
    ephemeralTokenId: null,
    costUsd: 0.019,
    ...overrides,
  };
}

/**
 * A flush hook like the usage outbox's: each batch takes what waits and
 * writes it as outbox rows; its undo puts it back. `undos` counts the undos.
 */
function outboxHook(writer: LogWriter) {
  const insert = writer.statement(`INSERT INTO usage_outbox (created_at_ms, records) VALUES (?, ?)`);
  const hook = { waiting: [] as string[], undos: 0 };
  writer.addFlushHook(() => {
    if (hook.waiting.length === 0) return;
    const taken = hook.waiting.splice(0);
    return {
      ops: taken.map((r) => [insert, [1, r]]),
      undo: () => {
        hook.undos++;
        hook.waiting.push(...taken);
      },
    };
  });
  return hook;
}

describe("LogWriter (SQLite writes on a worker thread)", () => {
  let dir: ReturnType<typeof tempDir>;
  let store: GatewayStore;
  let writer: LogWriter | undefined;
  afterEach(async () => {
    await writer?.close();
    writer = undefined;
    store.close();
    dir.remove();
  });

  function open(options: ConstructorParameters<typeof LogWriter>[2] = {}) {
    dir = tempDir();
    store = openStore(dir.path);
    const { logger, lines } = capturedLogger();
    writer = new LogWriter(store, logger, options);
    return { writer, lines };
  }

  it("writes request and audit rows in order, field for field, visible to the main connection once flush resolves", async () => {
    const { writer } = open({ flushIntervalMs: 60_000 });
    writer.request(entry("req_1"));
    writer.audit({
      at: "2026-11-23T01:00:00.001Z",
      event: "auth_denied",
      keyId: null,
      revision: null,
      detail: { reason: "unknown", ip: "127.0.0.1" },
    });
    writer.request(
      entry("req_2", {
        status: 499,
        error: "client_closed",
        attempts: null,
        costUsd: null,
        stream: true,
        ephemeral: true,
        ephemeralTokenId: "jti_1",
      }),
    );
    // Nothing is written by the request path itself.
    expect(store.requestLog.list()).toHaveLength(0);
    expect(writer.pending).toBe(3);
    await writer.flush();
    expect(writer.pending).toBe(0);
    expect(store.requestLog.list()).toEqual([
      entry("req_1"),
      entry("req_2", {
        status: 499,
        error: "client_closed",
        attempts: null,
        costUsd: null,
        stream: true,
        ephemeral: true,
        ephemeralTokenId: "jti_1",
      }),
    ]);
    expect(store.audit.list().map((r) => [r.event, r.detail])).toEqual([
      ["auth_denied", { reason: "unknown", ip: "127.0.0.1" }],
    ]);
  });

  it("sends a batch on its own after the interval, and at once when maxBatch rows are queued", async () => {
    const timed = open({ flushIntervalMs: 20, maxBatch: 10 });
    timed.writer.request(entry("req_timer"));
    await expect.poll(() => store.requestLog.list().length, { timeout: 5_000 }).toBe(1);
    await timed.writer.close();
    store.close();
    dir.remove();

    // No timer will fire within the test: only the tenth row can send the batch.
    const { writer } = open({ flushIntervalMs: 60_000, maxBatch: 10 });
    for (let i = 0; i < 9; i++) writer.request(entry(`req_batch_${i}`));
    await new Promise((r) => setTimeout(r, 100));
    expect(store.requestLog.list()).toHaveLength(0);
    writer.request(entry("req_batch_9"));
    await expect.poll(() => store.requestLog.list().length, { timeout: 5_000 }).toBe(10);
  });

  it("sends a batch early once burstRows wait, but no sooner than minBatchGapMs after the last one", async () => {
    // No interval timer fires within the test: only burstRows can send.
    const { writer } = open({ flushIntervalMs: 60_000, burstRows: 4, minBatchGapMs: 1_000 });
    for (let i = 0; i < 3; i++) writer.request(entry(`req_a${i}`));
    await new Promise((r) => setTimeout(r, 100));
    expect(store.requestLog.list()).toHaveLength(0);
    // No batch went yet, so there is no gap to wait for. The batch is sent after t0.
    const t0 = performance.now();
    writer.request(entry("req_a3"));
    await expect.poll(() => store.requestLog.list().length, { timeout: 5_000 }).toBe(4);
    const firstWrittenAfterMs = performance.now() - t0;

    // The next 4 rows wait out the 1 s gap from that batch, then go on their own.
    for (let i = 0; i < 4; i++) writer.request(entry(`req_b${i}`));
    await expect.poll(() => store.requestLog.list(10).length, { timeout: 5_000 }).toBe(8);
    expect(firstWrittenAfterMs).toBeLessThan(990);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(990);
  });

  it("writes a flush hook's ops in the same transaction as the rows, and undoes both when it fails", async () => {
    const { writer, lines } = open({ flushIntervalMs: 60_000 });
    const insertOutbox = writer.statement(`INSERT INTO usage_outbox (created_at_ms, records) VALUES (?, ?)`);
    // The first batch's hook op breaks a NOT NULL constraint: the whole transaction, rows included, rolls back.
    let pending: string | null = "[]";
    let failNext = true;
    let undone = 0;
    writer.addFlushHook(() => {
      if (pending === null) return;
      const records = pending;
      pending = null;
      const broken = failNext;
      failNext = false;
      return {
        ops: [[insertOutbox, [broken ? null : 1, records]]],
        undo: () => {
          undone++;
          pending = records;
        },
      };
    });
    writer.request(entry("req_lost"));
    await writer.flush();
    expect(undone).toBe(1);
    expect(store.requestLog.list()).toHaveLength(0);
    expect(store.db.prepare("SELECT count(*) AS n FROM usage_outbox").get()).toEqual({ n: 0 });
    expect(
      lines.some((l) => l.msg === "failed to write a request/audit log batch; its rows were dropped" && l.rows === 1),
    ).toBe(true);

    // The undo put the hook's data back and asked for another batch: it goes again, once.
    expect(pending).toBe("[]");
    writer.request(entry("req_next"));
    await writer.flush();
    expect(store.requestLog.list().map((r) => r.requestId)).toEqual(["req_next"]);
    expect(store.db.prepare("SELECT count(*) AS n FROM usage_outbox").get()).toEqual({ n: 1 });
  });

  it("drops (and counts) rows beyond maxPendingRows rather than grow without bound", async () => {
    let dropped = 0;
    const { writer, lines } = open({
      flushIntervalMs: 60_000,
      maxBatch: 1_000,
      maxPendingRows: 1_000,
      onDropped: (n) => (dropped += n),
    });
    for (let i = 0; i < 1_005; i++) writer.request(entry(`req_${i}`));
    expect(dropped).toBe(5);
    expect(writer.dropped).toBe(5);
    expect(lines.filter((l) => String(l.msg).startsWith("request/audit log rows are being dropped"))).toHaveLength(1);
    await writer.flush();
    expect(store.requestLog.list(2_000)).toHaveLength(1_000);
  });

  it("waits for the key sync's write lock, past SQLite's own busy timeout, instead of failing the batch", async () => {
    // busy_timeout 50 ms: the lock is held six times longer, so the writer's own retries do the waiting.
    const { writer, lines } = open({ flushIntervalMs: 60_000, busyTimeoutMs: 50 });
    writer.request(entry("req_warm"));
    await writer.flush();
    store.db.prepare("BEGIN IMMEDIATE").run();
    store.db.prepare("INSERT INTO meta (key, value) VALUES ('held', '1')").run();
    writer.request(entry("req_waiting"));
    const flushed = writer.flush();
    await new Promise((r) => setTimeout(r, 300));
    expect(store.requestLog.list().map((r) => r.requestId)).toEqual(["req_warm"]);
    store.db.prepare("COMMIT").run();
    await flushed;
    expect(store.requestLog.list().map((r) => r.requestId)).toEqual(["req_warm", "req_waiting"]);
    expect(lines.filter((l) => l.level === 50)).toEqual([]);
  });

  it("gives up after busyRetryMs, puts the hook's data back and writes it once the lock is free", async () => {
    const { writer, lines } = open({ flushIntervalMs: 60_000, busyTimeoutMs: 20, busyRetryMs: 150 });
    const { waiting } = outboxHook(writer);
    writer.request(entry("req_warm"));
    await writer.flush();
    store.db.prepare("BEGIN IMMEDIATE").run();
    waiting.push("usage_1");
    writer.request(entry("req_locked_out"));
    await writer.flush();
    store.db.prepare("COMMIT").run();
    expect(waiting).toEqual(["usage_1"]);
    expect(
      lines.some(
        (l) =>
          l.msg === "failed to write a request/audit log batch; its rows were dropped" &&
          String(l.err && (l.err as { message?: string }).message).includes("locked"),
      ),
    ).toBe(true);
    await writer.flush();
    expect(waiting).toEqual([]);
    expect(
      (store.db.prepare("SELECT records FROM usage_outbox").all() as Array<{ records: string }>).map((r) => r.records),
    ).toEqual(["usage_1"]);
    expect(store.requestLog.list().map((r) => r.requestId)).toEqual(["req_warm"]);
  });

  it("judges a batch whose writer thread died in flight by its marker: the hook's data is written exactly once", async () => {
    const { writer, lines } = open({ flushIntervalMs: 60_000 });
    const { waiting } = outboxHook(writer);
    const thread = () =>
      (writer as unknown as { writer: { worker: { terminate(): Promise<number> } | null } }).writer.worker;
    writer.request(entry("req_warm"));
    await writer.flush(); // the thread is up: kills land while it reads, writes or answers, not before it starts
    // Kill the thread at different moments: before it reads the batch, while it writes, after it committed.
    for (const [i, delay] of [0, 0, 1, 2, 5, 10].entries()) {
      waiting.push(`usage_${i}`);
      for (let r = 0; r < 2_000; r++) writer.request(entry(`req_${i}_${r}`)); // a batch that takes a while to write
      const flushed = writer.flush();
      const worker = thread();
      await new Promise((r) => setTimeout(r, delay));
      await worker?.terminate();
      await flushed;
      // Whatever happened, a later batch carries anything that was undone, once the thread may restart (it backs off).
      await expect
        .poll(
          async () => {
            await writer.flush();
            return waiting.length;
          },
          { timeout: 10_000, interval: 50 },
        )
        .toBe(0);
    }
    const records = (
      store.db.prepare("SELECT records FROM usage_outbox ORDER BY seq").all() as Array<{ records: string }>
    ).map((r) => r.records);
    expect(records.sort()).toEqual(["usage_0", "usage_1", "usage_2", "usage_3", "usage_4", "usage_5"]);
    expect(waiting).toEqual([]);
    // A request row either made it or was reported dropped; never twice.
    const ids = store.requestLog.list().map((r) => r.requestId);
    expect(new Set(ids).size).toBe(ids.length);
    const deaths = lines.filter((l) => String(l.msg).startsWith("the SQLite writer thread died")).length;
    expect(deaths).toBeGreaterThan(0);
  });

  it("reads an unknown outcome from the batch marker: committed means no undo, not committed means undo", async () => {
    const { writer } = open({ flushIntervalMs: 60_000 });
    const hook = outboxHook(writer);
    const { waiting } = hook;
    type Write = (stmts: number[], params: unknown[][]) => Promise<unknown>;
    const thread = (writer as unknown as { writer: { write: Write } }).writer;
    const real = thread.write.bind(thread);
    const died = { ok: false, error: new Error("the SQLite writer thread exited with code 1"), unknown: true };

    // The thread committed, then died before it answered.
    thread.write = async (stmts, params) => {
      await real(stmts, params);
      return died;
    };
    waiting.push("committed");
    writer.touch();
    await writer.flush();
    expect(hook.undos).toBe(0);

    // The thread died before it wrote anything.
    thread.write = async () => died;
    waiting.push("lost");
    writer.touch();
    await writer.flush();
    expect(hook.undos).toBe(1);

    thread.write = real;
    await writer.flush();
    const records = (
      store.db.prepare("SELECT records FROM usage_outbox ORDER BY seq").all() as Array<{ records: string }>
    ).map((r) => r.records);
    expect(records).toEqual(["committed", "lost"]);
  });

  it("run() writes in its own transaction after what is queued, and on the main connection once closed", async () => {
    const { writer } = open({ flushIntervalMs: 60_000 });
    const del = writer.statement(`DELETE FROM request_log WHERE request_id = ?`);
    writer.request(entry("req_kept"));
    writer.request(entry("req_deleted"));
    // Queued rows go first: the delete finds the row it names.
    expect(await writer.run([[del, ["req_deleted"]]], "test delete")).toBe(true);
    expect(store.requestLog.list().map((r) => r.requestId)).toEqual(["req_kept"]);
    expect(await writer.setMeta("test_key", "1")).toBe(true);
    expect(store.meta.get("test_key")).toBe("1");
    await writer.close();
    expect(await writer.setMeta("test_key", "2")).toBe(true);
    expect(store.meta.get("test_key")).toBe("2");
    // A failing statement answers false, changes nothing, throws nothing.
    const bad = writer.statement(`INSERT INTO usage_outbox (created_at_ms, records) VALUES (?, ?)`);
    expect(await writer.run([[bad, [null, "x"]]], "test failure")).toBe(false);
    expect(store.db.prepare("SELECT count(*) AS n FROM usage_outbox").get()).toEqual({ n: 0 });
  });

  it("ignores rows after close, and close writes what was queued", async () => {
    const { writer, lines } = open({ flushIntervalMs: 60_000 });
    writer.request(entry("req_before"));
    await writer.close();
    writer.request(entry("req_after"));
    expect(writer.pending).toBe(0);
    await writer.flush();
    expect(store.requestLog.list().map((r) => r.requestId)).toEqual(["req_before"]);
    expect(lines.filter((l) => l.level === 50)).toEqual([]);
  });

  it("a thread that cannot even open the file is restarted with backoff, not for every batch", async () => {
    open({ flushIntervalMs: 60_000 }); // the temp dir and store; the writer under test is another
    // A writer on a file in a directory that does not exist: every thread dies at start.
    const broken = new LogWriter({ ...store, path: `${dir.path}/missing/gateway.db` }, capturedLogger().logger, {
      flushIntervalMs: 5,
    });
    const thread = (broken as unknown as { writer: { starts: number } }).writer;
    const until = Date.now() + 600;
    // At least 60 rows, however slowly a loaded machine runs the loop: the count asserted below is of rows, not of time.
    for (let sent = 0; Date.now() < until || sent < 60; sent++) {
      broken.request(entry("req_lost"));
      await new Promise((r) => setTimeout(r, 5));
    }
    await broken.flush();
    // About 100 batches went in 600 ms; the restarts back off 100, 200, 400 ms...
    expect(thread.starts).toBeGreaterThanOrEqual(1);
    expect(thread.starts).toBeLessThanOrEqual(5);
    expect(broken.dropped).toBeGreaterThan(50);
    await broken.close();
  });

  it("close() still writes usage settled while its last batches are being written", async () => {
    const { writer } = open({ flushIntervalMs: 25 });
    const { waiting } = outboxHook(writer);
    writer.request(entry("req_warm"));
    await writer.flush();
    waiting.push("before");
    writer.touch();
    const closed = writer.close();
    // A stream cut at shutdown settles its usage now, while close() waits for the batch above.
    waiting.push("during");
    writer.touch();
    await closed;
    expect(waiting).toEqual([]);
    expect(
      (store.db.prepare("SELECT records FROM usage_outbox ORDER BY seq").all() as Array<{ records: string }>).map(
        (r) => r.records,
      ),
    ).toEqual(["before", "during"]);
  });

  it("a throwing undo is logged, not an unhandled rejection, and close() still finishes", async () => {
    const { writer, lines } = open({ flushIntervalMs: 60_000 });
    const insertOutbox = writer.statement(`INSERT INTO usage_outbox (created_at_ms, records) VALUES (?, ?)`);
    let once = true;
    writer.addFlushHook(() => {
      if (!once) return;
      once = false;
      return {
        ops: [[insertOutbox, [null, "breaks NOT NULL"]]],
        undo: () => {
          throw new Error("undo failed");
        },
      };
    });
    writer.touch();
    await writer.flush();
    expect(lines.some((l) => l.msg === "could not put back what a failed log batch took; that usage is lost")).toBe(
      true,
    );
    await writer.close();
  });
});
