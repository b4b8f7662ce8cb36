import type { Logger } from "@tollgate/shared";
import type { Database } from "better-sqlite3";
import type { LogWriter } from "../db/request-log-writer.js";

const CHUNK_ROWS = 5_000;
/** Chunks per table per run: a backlog larger than this is worked off over the next runs. */
const MAX_CHUNKS = 200;

/**
 * Deletes request-log and audit rows older than LOG_RETENTION, so the gateway's disk use is
 * bounded by its traffic over that period rather than growing for ever. Runs on the log
 * writer's thread (the event loop never waits for SQLite), in chunks so one run never holds
 * the write lock long: the oldest rows have the smallest ids, so each chunk reads from the start.
 */
export class LogRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | null = null;
  private readonly deleteRequests;
  private readonly deleteAudit;

  constructor(
    private readonly options: {
      logWriter: LogWriter;
      /** The main connection, for reads (WAL: they never wait for the writer). */
      db: Database;
      logger: Logger;
      now: () => number;
      retentionMs: number;
      intervalMs?: number;
    },
  ) {
    const sql = (table: string) =>
      `DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE at < ? ORDER BY id LIMIT ${CHUNK_ROWS})`;
    this.deleteRequests = options.logWriter.statement(sql("request_log"));
    this.deleteAudit = options.logWriter.statement(sql("audit_log"));
  }

  start(): void {
    void this.runOnce();
    this.timer = setInterval(() => void this.runOnce(), this.options.intervalMs ?? 3_600_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One pass over both logs; resolves with the chunks run (each deletes up to CHUNK_ROWS rows). */
  runOnce(): Promise<number> {
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<number> {
    const cutoff = new Date(this.options.now() - this.options.retentionMs).toISOString();
    let chunks = 0;
    for (const [table, stmt] of [
      ["request_log", this.deleteRequests],
      ["audit_log", this.deleteAudit],
    ] as const) {
      for (let i = 0; i < MAX_CHUNKS && this.olderRowsLeft(table, cutoff); i++) {
        if (!(await this.options.logWriter.run([[stmt, [cutoff]]], "log retention"))) return chunks;
        chunks++;
      }
    }
    if (chunks > 0)
      this.options.logger.info(
        { chunks, cutoff },
        "log retention: deleted request and audit rows older than LOG_RETENTION",
      );
    return chunks;
  }

  /** Whether the oldest row of `table` is older than the cutoff. */
  private olderRowsLeft(table: string, cutoff: string): boolean {
    if (!this.options.db.open) return false;
    const row = this.options.db.prepare(`SELECT at FROM ${table} ORDER BY id LIMIT 1`).get() as
      | { at: string }
      | undefined;
    return row !== undefined && row.at < cutoff;
  }
}
