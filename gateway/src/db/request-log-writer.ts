import { randomBytes } from "node:crypto";
import type { Logger } from "@tollgate/shared";
import type { GatewayStore } from "./store.js";
import { AUDIT_INSERT_SQL, auditParams, type AuditEntry } from "./audit-repository.js";
import { META_UPSERT_SQL } from "./meta-repository.js";
import { REQUEST_LOG_INSERT_SQL, requestLogParams, type RequestLogEntry } from "./request-log-repository.js";
import { BatchTimer } from "./batch-timer.js";
import { FlushHooks, runDones, runUndos, type FlushHook } from "./flush-hooks.js";
import { SqliteWriter, type WriterStatement } from "./sqlite-writer.js";

export interface LogWriterOptions {
  /** How long a row may wait in memory before its batch is sent to the writer thread. */
  flushIntervalMs?: number;
  /** Rows queued at which a batch goes at once, without waiting for the interval. */
  maxBatch?: number;
  /** Rows queued at which a batch goes early: as soon as minBatchGapMs have passed since the last batch. */
  burstRows?: number;
  /** The shortest time between two early batches (burstRows). */
  minBatchGapMs?: number;
  /** Rows per ms (request and audit rows of the last batch) from which the gap between early batches is busyBatchGapMs. */
  busyRowsPerMs?: number;
  /** The gap between early batches at such a rate: fewer, larger batches cost the writer thread less CPU per row. */
  busyBatchGapMs?: number;
  /** Rows queued or being written beyond which new log rows are dropped (and counted): the disk cannot keep up. */
  maxPendingRows?: number;
  /** How long a batch may wait for the write lock held by the key sync. */
  busyRetryMs?: number;
  /** SQLite's own wait for the lock, per try (tests shorten it). */
  busyTimeoutMs?: number;
  /** How long close() keeps writing what is still queued or being retried. */
  closeTimeoutMs?: number;
  /** Told the number of rows dropped because the writes fell behind (metrics). */
  onDropped?: (rows: number) => void;
}

export type { FlushHook, FlushHookBatch } from "./flush-hooks.js";

/**
 * Batches are kept small at the rates one connection sends: the writer
 * thread's CPU comes in bursts that grow with the batch, and a request in
 * flight on a machine whose cores the gateway shares waits for a core during
 * a long one. At 4,000 rows a second and more they grow (a 20 ms gap): each
 * batch costs a wake-up of the thread and a commit, which at 200 batches a
 * second cost more CPU than the rows themselves. See BatchTimer for the
 * cadence, and bench/README.md for the measurements behind these defaults.
 */
const DEFAULT_FLUSH_INTERVAL_MS = 25;
const DEFAULT_BURST_ROWS = 16;
const DEFAULT_MIN_BATCH_GAP_MS = 5;
/** 4,000 rows a second and more: beyond what one connection at a time sends (1,300–3,000 req/s in the bench). */
const DEFAULT_BUSY_ROWS_PER_MS = 4;
const DEFAULT_BUSY_BATCH_GAP_MS = 20;

/** The meta row naming the last batch committed, so a batch whose writer thread died can be judged. */
const LAST_BATCH_META_KEY = "log_writer_last_batch";

/**
 * Queues request-log and audit rows in memory and writes them in batches,
 * one transaction each, on a worker thread (SqliteWriter): the request path
 * never waits on SQLite, and neither do the requests that arrive while a
 * batch is written. Handing a row over is far cheaper for the event loop
 * than writing it, which would hold the loop for the whole batch.
 */
export class LogWriter {
  private stmts: WriterStatement[] = [];
  private params: unknown[][] = [];
  /** Request and audit rows queued here (hooks' ops not counted). */
  private queued = 0;
  /** Rows handed to the writer thread and not yet answered. */
  private writing = 0;
  private readonly timer: BatchTimer;
  private closed = false;
  private closing = false;
  /** Batches failed in a row: the next retry waits longer (a disk that keeps failing). */
  private failures = 0;
  private readonly closeTimeoutMs: number;
  private readonly flushIntervalMs: number;
  private readonly maxBatch: number;
  private readonly burstRows: number;
  private readonly maxPendingRows: number;
  private readonly writer: SqliteWriter;
  private readonly requestStmt: WriterStatement;
  private readonly auditStmt: WriterStatement;
  private readonly markStmt: WriterStatement;
  private readonly hooks = new FlushHooks();
  private hookPending = false;
  private readonly batches = new Set<Promise<void>>();
  /** Names this process's batches in the meta row; batch numbers restart with the process. */
  private readonly epoch = randomBytes(6).toString("hex");
  private batchSeq = 0;
  private droppedRows = 0;
  private lastDropLogMs = 0;
  private readonly onDropped: ((rows: number) => void) | undefined;

  constructor(
    private readonly store: GatewayStore,
    private readonly logger: Logger,
    options: LogWriterOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
    this.maxBatch = options.maxBatch ?? 256;
    this.burstRows = options.burstRows ?? DEFAULT_BURST_ROWS;
    this.timer = new BatchTimer(
      () => this.send(),
      this.flushIntervalMs,
      options.minBatchGapMs ?? DEFAULT_MIN_BATCH_GAP_MS,
      {
        rowsPerMs: options.busyRowsPerMs ?? DEFAULT_BUSY_ROWS_PER_MS,
        gapMs: options.busyBatchGapMs ?? DEFAULT_BUSY_BATCH_GAP_MS,
      },
    );
    this.maxPendingRows = Math.max(this.maxBatch, options.maxPendingRows ?? 50_000);
    this.closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
    this.onDropped = options.onDropped;
    this.writer = new SqliteWriter(store.path, logger, {
      busyRetryMs: options.busyRetryMs,
      busyTimeoutMs: options.busyTimeoutMs,
    });
    this.requestStmt = this.writer.statement(REQUEST_LOG_INSERT_SQL);
    this.auditStmt = this.writer.statement(AUDIT_INSERT_SQL);
    this.markStmt = this.writer.statement(META_UPSERT_SQL);
  }

  request(entry: RequestLogEntry): void {
    this.push(this.requestStmt, requestLogParams(entry));
  }

  audit(entry: AuditEntry): void {
    this.push(this.auditStmt, auditParams(entry));
  }

  /** Registers a statement (positional parameters) for flush hooks' ops. */
  statement(sql: string): WriterStatement {
    return this.writer.statement(sql);
  }

  /**
   * Runs `take` for every batch: the ops it returns are written in the same
   * transaction as the batch's rows, and its undo runs if that transaction fails.
   */
  addFlushHook(take: FlushHook): void {
    this.hooks.add(take);
  }

  /** Runs `fn` when close() begins, so what is held in memory elsewhere (the denial summaries) gets its rows in. */
  beforeClose(fn: () => void): void {
    this.hooks.beforeClose(fn);
  }

  /** A hook has something to write: send a batch soon even if no row is queued. */
  touch(): void {
    if (this.closed) return;
    this.hookPending = true;
    this.schedule();
  }

  /** Rows queued or being written. */
  get pending(): number {
    return this.queued + this.writing;
  }

  /** Rows dropped since start: the writes could not keep up, or their batch failed. */
  get dropped(): number {
    return this.droppedRows;
  }

  /**
   * Runs `ops` in one transaction of their own on the writer thread, after
   * everything queued now, so the event loop never waits for SQLite's write
   * lock. Resolves true once written, false if it failed (logged). After
   * close(), runs them on the main connection.
   */
  async run(ops: Array<[WriterStatement, unknown[]]>, what: string): Promise<boolean> {
    if (ops.length === 0) return true;
    if (this.closed) {
      try {
        if (!this.store.db.open) return false;
        this.runHere(
          ops.map((o) => o[0]),
          ops.map((o) => o[1]),
        );
        return true;
      } catch (err) {
        this.logger.warn({ err, what }, "a SQLite write failed; it is retried later");
        return false;
      }
    }
    this.timer.cancel();
    this.send();
    const outcome = await this.writer.write(
      ops.map((o) => o[0]),
      ops.map((o) => o[1]),
    );
    if (!outcome.ok) this.logger.warn({ err: outcome.error, what }, "a SQLite write failed; it is retried later");
    return outcome.ok;
  }

  /** Sets a meta value through the writer thread (see run). */
  setMeta(key: string, value: string): Promise<boolean> {
    return this.run([[this.markStmt, [key, value]]], `set meta ${key}`);
  }

  /** Sends everything queued now, and resolves once it and every earlier batch is written (or has failed). */
  async flush(): Promise<void> {
    // Hooks may hold data back between batches (the usage outbox's cadence, or a take
    // waiting for the one being written): a flush takes it all, in a few rounds at most.
    if (this.hooks.size > 0) this.hookPending = true;
    // Another round only when a hook asked for one after a batch that committed (not a failing disk).
    for (let round = 0; round < 3 && (round === 0 || (this.hookPending && this.failures === 0)); round++) {
      this.timer.cancel();
      this.send(true);
      while (this.batches.size > 0) await Promise.all([...this.batches]);
    }
  }

  /**
   * Writes what is queued, then stops the writer thread; rows pushed
   * afterwards are ignored. Usage settled while the last batches are written
   * (a stream cut at shutdown) still goes in; whatever the writer thread could
   * not write in time is written on the main connection as a last resort.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.hooks.runBeforeClose(this.logger);
    this.closing = true;
    if (this.hooks.size > 0) this.hookPending = true;
    const until = Date.now() + this.closeTimeoutMs;
    while ((this.queued > 0 || this.hookPending || this.batches.size > 0) && Date.now() < until) {
      this.timer.cancel();
      this.send(true);
      await Promise.all([...this.batches]);
    }
    this.closed = true;
    this.timer.cancel();
    await this.writer.close();
    if (this.queued > 0 || this.hookPending) this.writeHere();
  }

  /** Runs statements in one transaction on the main connection (after close() only: the thread is gone). */
  private runHere(stmts: WriterStatement[], params: unknown[][]): void {
    const db = this.store.db;
    const prepared = new Map<WriterStatement, ReturnType<typeof db.prepare>>();
    db.transaction(() => {
      for (let i = 0; i < stmts.length; i++) {
        const id = stmts[i]!;
        let stmt = prepared.get(id);
        if (!stmt) prepared.set(id, (stmt = db.prepare(this.writer.sqlOf(id))));
        stmt.run(params[i]!);
      }
    }).immediate();
  }

  /** The last resort of close(): what is left, in one transaction on the main connection. */
  private writeHere(): void {
    const { stmts, params, undos, dones, rows } = this.takeBatch(true);
    if (stmts.length === 0) return;
    try {
      this.runHere(stmts, params);
      runDones(dones, this.logger);
    } catch (err) {
      runUndos(undos, this.logger);
      this.logger.error(
        { err, rows },
        "could not write the last request/audit log batch at shutdown; its rows and usage were lost",
      );
    }
  }

  private push(stmt: WriterStatement, params: unknown[]): void {
    if (this.closed || this.closing) return;
    if (this.queued + this.writing >= this.maxPendingRows) {
      this.dropRow();
      return;
    }
    this.stmts.push(stmt);
    this.params.push(params);
    this.queued++;
    if (this.queued >= this.maxBatch) {
      this.timer.cancel();
      this.send();
    } else if (this.queued >= this.burstRows) this.scheduleEarly();
    else this.schedule();
  }

  private dropRow(): void {
    this.droppedRows++;
    this.onDropped?.(1);
    const now = Date.now();
    if (now - this.lastDropLogMs >= 10_000) {
      this.lastDropLogMs = now;
      this.logger.error(
        { pending: this.pending, dropped: this.droppedRows, path: this.store.path },
        "request/audit log rows are being dropped: SQLite writes cannot keep up (is the disk full or slow?)",
      );
    }
  }

  /** Takes the queued rows and the hooks' ops as one batch. */
  private takeBatch(final: boolean): {
    stmts: WriterStatement[];
    params: unknown[][];
    undos: Array<() => void>;
    dones: Array<() => void>;
    rows: number;
  } {
    const stmts = this.stmts;
    const params = this.params;
    const rows = this.queued;
    this.stmts = [];
    this.params = [];
    this.queued = 0;
    this.hookPending = false;
    const { undos, dones } = this.hooks.take(final, stmts, params);
    return { stmts, params, undos, dones, rows };
  }

  /** One batch: the queued rows, the hooks' ops and the batch marker, in one transaction on the writer thread. */
  private send(final = false): void {
    if (this.closed || (this.queued === 0 && !this.hookPending)) return;
    const { stmts, params, undos, dones, rows } = this.takeBatch(final);
    if (stmts.length === 0) return;
    this.timer.sent(rows);
    const seq = ++this.batchSeq;
    stmts.push(this.markStmt);
    params.push([LAST_BATCH_META_KEY, `${this.epoch}:${seq}`]);
    this.writing += rows;
    const done = this.writer.write(stmts, params).then((outcome) => {
      this.writing -= rows;
      if (outcome.ok || (outcome.unknown && this.committed(seq))) {
        this.failures = 0;
        runDones(dones, this.logger);
        return;
      }
      this.failures++;
      runUndos(undos, this.logger);
      if (rows > 0) {
        this.droppedRows += rows;
        this.onDropped?.(rows);
      }
      try {
        // Losing a batch of log rows beats failing requests; what the hooks took goes again with a later batch.
        this.logger.error(
          { err: outcome.error, rows, failuresInARow: this.failures },
          "failed to write a request/audit log batch; its rows were dropped",
        );
      } catch {
        // A logger that throws must not take the writer down.
      }
      if (undos.length > 0) this.retryLater();
    });
    this.batches.add(done);
    void done.finally(() => this.batches.delete(done));
  }

  /** After a failed batch, the hooks' data goes again: soon, then less and less often while failures go on (up to 10 s). */
  private retryLater(): void {
    this.hookPending = true;
    if (this.closing || this.closed) return;
    this.timer.retryIn(Math.min(10_000, this.flushIntervalMs * 2 ** Math.min(this.failures, 9)));
  }

  /** Whether batch `seq` of this process committed (batches commit in order), read on the main thread's connection. */
  private committed(seq: number): boolean {
    try {
      const last = this.store.db.open ? this.store.meta.get(LAST_BATCH_META_KEY) : undefined;
      const [epoch, n] = (last ?? "").split(":");
      return epoch === this.epoch && Number(n) >= seq;
    } catch {
      return false;
    }
  }

  private schedule(): void {
    if (!this.closed) this.timer.schedule();
  }

  /** Not while batches fail: their retries back off. */
  private scheduleEarly(): void {
    if (this.failures > 0) {
      this.schedule();
      return;
    }
    if (!this.closed) this.timer.scheduleEarly();
  }
}
