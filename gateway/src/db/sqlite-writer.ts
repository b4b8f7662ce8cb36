import { Worker } from "node:worker_threads";
import type { Logger } from "@tollgate/shared";

/** A statement registered with the writer thread. */
export type WriterStatement = number;

/** How a batch ended. `unknown`: the writer thread died with it in flight, so whether it committed is not known. */
export type BatchOutcome = { ok: true } | { ok: false; error: Error; unknown: boolean };

type Reply = { id: number; ok: true } | { id: number; ok: false; message: string; code: string | undefined };

const WORKER_URL = new URL("../../lib/sqlite-writer.worker.mjs", import.meta.url);

export interface SqliteWriterOptions {
  /** How long a batch waits for the write lock (held by the main thread's key sync) before it fails. */
  busyRetryMs?: number;
  /** SQLite's busy_timeout on the writer's connection: one wait, before the retries. */
  busyTimeoutMs?: number;
}

/**
 * Writes batches to the gateway's SQLite file from a worker thread, one
 * transaction per batch, so that no SQLite write (nor a WAL checkpoint) ever
 * pauses the event loop that serves requests: better-sqlite3 is synchronous,
 * so a batch or a checkpoint written here would hold every request waiting
 * behind it (see bench/README.md).
 *
 * The main thread keeps its own connection for reads and for the key sync's
 * writes (WAL: readers never wait, and the two writers take turns).
 */
export class SqliteWriter {
  private worker: Worker | null = null;
  private nextStatement = 1;
  private nextBatch = 1;
  /** Every statement ever registered, to define them again in a restarted worker. */
  private readonly sql = new Map<WriterStatement, string>();
  /** Statements the current worker has not been sent yet. */
  private undefinedDefs: Array<[WriterStatement, string]> = [];
  private readonly inFlight = new Map<number, (outcome: BatchOutcome) => void>();
  private closing: Promise<void> | null = null;
  /** Threads that died in a row, and when the next may start: a thread that cannot even open the file must not be restarted for every batch. */
  private deaths = 0;
  private restartAtMs = 0;
  /** Threads started so far (diagnostics, tests). */
  starts = 0;

  constructor(
    private readonly path: string,
    private readonly logger: Logger,
    private readonly options: SqliteWriterOptions = {},
  ) {}

  /** Registers a statement (positional `?` parameters) for use in batches. */
  statement(sql: string): WriterStatement {
    const id = this.nextStatement++;
    this.sql.set(id, sql);
    this.undefinedDefs.push([id, sql]);
    return id;
  }

  /** The SQL of a registered statement. */
  sqlOf(id: WriterStatement): string {
    const sql = this.sql.get(id);
    if (sql === undefined) throw new Error(`statement ${id} was never registered`);
    return sql;
  }

  /** Batches sent and not yet answered. */
  get pendingBatches(): number {
    return this.inFlight.size;
  }

  /**
   * Runs `stmts[i]` with `params[i]` for every i, in one transaction, after
   * every batch written before it. Never rejects: the outcome says how it ended.
   */
  write(stmts: WriterStatement[], params: unknown[][]): Promise<BatchOutcome> {
    if (this.closing)
      return Promise.resolve({ ok: false, error: new Error("the SQLite writer is closed"), unknown: false });
    if (!this.worker && Date.now() < this.restartAtMs) {
      return Promise.resolve({
        ok: false,
        error: new Error("the SQLite writer thread keeps failing; it restarts after a pause"),
        unknown: false,
      });
    }
    const worker = this.worker ?? this.start();
    const id = this.nextBatch++;
    const defs = this.undefinedDefs.length > 0 ? this.undefinedDefs : undefined;
    this.undefinedDefs = [];
    return new Promise<BatchOutcome>((resolve) => {
      this.inFlight.set(id, resolve);
      worker.postMessage({ id, defs, stmts, params });
    });
  }

  /** Waits for every batch in flight, then stops the thread. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const worker = this.worker;
      if (!worker) return;
      const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
      // Batches are answered in order, so "close" is handled after all of them.
      worker.postMessage("close");
      await exited;
    })();
    return this.closing;
  }

  private start(): Worker {
    const worker = new Worker(WORKER_URL, {
      workerData: {
        path: this.path,
        busyRetryMs: this.options.busyRetryMs ?? 30_000,
        busyTimeoutMs: this.options.busyTimeoutMs ?? 5_000,
      },
    });
    // It must never keep the process alive by itself; stopping the gateway closes it.
    worker.unref();
    this.starts++;
    worker.on("message", (reply: Reply) => {
      const resolve = this.inFlight.get(reply.id);
      if (!resolve) return;
      this.inFlight.delete(reply.id);
      this.deaths = 0;
      if (reply.ok) resolve({ ok: true });
      else resolve({ ok: false, error: Object.assign(new Error(reply.message), { code: reply.code }), unknown: false });
    });
    let failure: Error | null = null;
    worker.on("error", (err) => {
      failure = err;
    });
    worker.on("exit", (code) => {
      if (this.worker === worker) this.worker = null;
      // A fresh worker must be told every statement again.
      this.undefinedDefs = [...this.sql];
      if (this.inFlight.size === 0 && (this.closing || code === 0)) return;
      const error = failure ?? new Error(`the SQLite writer thread exited with code ${code}`);
      this.deaths++;
      this.restartAtMs = Date.now() + Math.min(30_000, 100 * 2 ** Math.min(this.deaths - 1, 9));
      this.logger.error(
        { err: error, batches: this.inFlight.size },
        "the SQLite writer thread died; batches in flight may or may not have been written; a new thread takes the next batch",
      );
      const lost = [...this.inFlight.values()];
      this.inFlight.clear();
      for (const resolve of lost) resolve({ ok: false, error, unknown: true });
    });
    this.worker = worker;
    this.undefinedDefs = [...this.sql];
    return worker;
  }
}
