import type { Logger } from "@tollgate/shared";
import type { Database } from "better-sqlite3";

/** One request's usage, as it is reported. */
export interface UsageDelta {
  keyId: string;
  userId: string;
  teamId: string;
  atMs: number;
  inputTokens: number;
  outputTokens: number;
  costMicroUsd: number;
}

export interface OutboxRecord {
  keyId: string;
  userId: string;
  teamId: string;
  day: string;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  costMicroUsd: number;
  lastUsedAtMs: number;
}

export interface OutboxRow {
  seq: number;
  records: OutboxRecord[];
}

/** Deletes an acknowledged outbox row. */
export const OUTBOX_DELETE_SQL = `DELETE FROM usage_outbox WHERE seq = ?`;

/** Writes an outbox row (created_at_ms, records JSON); run in the log batch's transaction. */
export const OUTBOX_INSERT_SQL = `INSERT INTO usage_outbox (created_at_ms, records) VALUES (?, ?)`;

/** The control plane's QuotaService.ReportUsage, as the outbox needs it. */
export interface UsageRpc {
  reportUsage(reports: OutboxRow[]): Promise<number[]>;
}

export interface UsageOutboxOptions {
  db: Database;
  logger: Logger;
  now: () => number;
  /**
   * Deletes acknowledged rows elsewhere (the log writer's thread), so the event
   * loop never waits for SQLite's write lock; on `db` when absent.
   */
  remove?: (seqs: number[]) => Promise<void>;
}

/**
 * Usage on its way to the control plane. Requests add to per-key, per-day
 * totals in memory; each log batch writes them as one outbox row in the same
 * SQLite transaction as the request log; a sender reports rows and deletes
 * them only once acknowledged. The control plane dedupes on (gateway, seq),
 * so a row resent after a crash or a lost answer counts once.
 */
export class UsageOutbox {
  private pending = new Map<string, OutboxRecord>();
  private readonly selectBatch;
  private readonly deleteSeq;
  private readonly countRows;
  private sending: Promise<void> | null = null;
  private failures = 0;
  private nextTryMs = 0;

  private readonly db: Database;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly remove: ((seqs: number[]) => Promise<void>) | undefined;

  constructor({ db, logger, now, remove }: UsageOutboxOptions) {
    this.db = db;
    this.logger = logger;
    this.now = now;
    this.remove = remove;
    this.selectBatch = db.prepare<[number], { seq: number; records: string }>(
      `SELECT seq, records FROM usage_outbox ORDER BY seq LIMIT ?`,
    );
    this.deleteSeq = db.prepare<[number]>(OUTBOX_DELETE_SQL);
    this.countRows = db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM usage_outbox`);
  }

  /** The UTC day last formatted, and the span of milliseconds it covers. */
  private lastDay = { day: "", startMs: 0, endMs: 0 };

  add(d: UsageDelta): void {
    let last = this.lastDay;
    if (d.atMs < last.startMs || d.atMs >= last.endMs) {
      const startMs = Math.floor(d.atMs / 86_400_000) * 86_400_000;
      last = this.lastDay = { day: new Date(d.atMs).toISOString().slice(0, 10), startMs, endMs: startMs + 86_400_000 };
    }
    const day = last.day;
    const id = `${d.keyId}|${day}`;
    let r = this.pending.get(id);
    if (!r) {
      r = {
        keyId: d.keyId,
        userId: d.userId,
        teamId: d.teamId,
        day,
        requests: 0,
        inputTokens: 0,
        outputTokens: 0,
        costMicroUsd: 0,
        lastUsedAtMs: 0,
      };
      this.pending.set(id, r);
    }
    // Whole, non-negative counts only: one odd value from an upstream must not poison a report.
    const whole = (v: number) =>
      Number.isFinite(v) ? Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, Math.round(v))) : 0;
    r.requests += 1;
    r.inputTokens += whole(d.inputTokens);
    r.outputTokens += whole(d.outputTokens);
    r.costMicroUsd += whole(d.costMicroUsd);
    if (d.atMs > r.lastUsedAtMs) r.lastUsedAtMs = d.atMs;
  }

  /**
   * Takes the totals gathered since the last call: `row` is the outbox row
   * to write (OUTBOX_INSERT_SQL's parameters, null when nothing was used),
   * written inside the log batch transaction; `undo` merges the totals back
   * into memory should that transaction fail.
   */
  takePending(): { row: [createdAtMs: number, records: string] | null; undo: () => void } {
    const taken = this.pending;
    this.pending = new Map();
    return {
      row: taken.size > 0 ? [this.now(), JSON.stringify([...taken.values()])] : null,
      undo: () => {
        for (const r of taken.values()) {
          const cur = this.pending.get(`${r.keyId}|${r.day}`);
          if (!cur) this.pending.set(`${r.keyId}|${r.day}`, r);
          else {
            cur.requests += r.requests;
            cur.inputTokens += r.inputTokens;
            cur.outputTokens += r.outputTokens;
            cur.costMicroUsd += r.costMicroUsd;
            cur.lastUsedAtMs = Math.max(cur.lastUsedAtMs, r.lastUsedAtMs);
          }
        }
      },
    };
  }

  /** Usage is waiting in memory for the next outbox row. */
  get hasPending(): boolean {
    return this.pending.size > 0;
  }

  get backlog(): number {
    return this.db.open ? this.countRows.get()!.n : 0;
  }

  /** Reports what waits, in order, until the outbox is empty or the control plane fails (then backs off). */
  send(rpc: UsageRpc, force = false): Promise<void> {
    if (this.sending) return this.sending;
    if (!force && this.now() < this.nextTryMs) return Promise.resolve();
    this.sending = this.drain(rpc)
      .catch((err: unknown) =>
        this.logger.warn(
          { err: (err as Error).message },
          "usage report to the control plane failed; kept in the outbox, will retry",
        ),
      )
      .finally(() => {
        this.sending = null;
      });
    return this.sending;
  }

  private async drain(rpc: UsageRpc): Promise<void> {
    for (;;) {
      if (!this.db.open) return;
      const all = this.selectBatch
        .all(ROWS_PER_CALL)
        .map((r) => ({ seq: r.seq, records: JSON.parse(r.records) as OutboxRecord[] }));
      if (all.length === 0) return;
      // The control plane takes at most 20,000 records a call: stay well under it.
      const rows: OutboxRow[] = [];
      let records = 0;
      for (const r of all) {
        if (rows.length > 0 && records + r.records.length > RECORDS_PER_CALL) break;
        rows.push(r);
        records += r.records.length;
      }
      let acked: number[];
      try {
        acked = await rpc.reportUsage(rows);
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code === INVALID_ARGUMENT) {
          // A row the control plane will never take must not block the rows behind it.
          await this.setAsideRejected(rpc, rows, err as Error);
          continue;
        }
        this.failures++;
        const delay = Math.min(30_000, 500 * 2 ** Math.min(this.failures, 6));
        this.nextTryMs = this.now() + delay;
        if (this.failures === 1 || this.failures % 10 === 0) {
          this.logger.warn(
            { err: (err as Error).message, waiting: rows.length, retryInMs: delay },
            "usage report to the control plane failed; kept in the outbox, will retry",
          );
        }
        return;
      }
      this.failures = 0;
      await this.deleteAll(acked);
      if (all.length < ROWS_PER_CALL && rows.length === all.length) return;
    }
  }

  /**
   * Deletes acknowledged rows through `remove` (the log writer's thread), so the
   * event loop never waits for SQLite's write lock; on the main connection
   * when none is set. A delete that fails leaves rows that are reported again,
   * which the control plane dedupes on (gateway, seq).
   */
  private async deleteAll(seqs: number[]): Promise<void> {
    if (seqs.length === 0) return;
    if (this.remove) {
      await this.remove(seqs);
      return;
    }
    if (!this.db.open) return;
    // IMMEDIATE: take the write lock first, never fail upgrading a read.
    this.db
      .transaction((list: number[]) => {
        for (const s of list) this.deleteSeq.run(s);
      })
      .immediate(seqs);
  }

  /** Sends the rows one by one; a row refused on its own is deleted and logged (counts, never secrets). */
  private async setAsideRejected(rpc: UsageRpc, rows: OutboxRow[], first: Error): Promise<void> {
    for (const row of rows) {
      try {
        await this.deleteAll(await rpc.reportUsage([row]));
      } catch (err) {
        if ((err as { code?: number }).code !== INVALID_ARGUMENT) throw err;
        this.logger.error(
          { seq: row.seq, records: row.records.length, err: (err as Error).message, batchErr: first.message },
          "the control plane refused a usage report as invalid; it was set aside (deleted) so later reports can go",
        );
        await this.deleteAll([row.seq]);
      }
    }
  }
}

const ROWS_PER_CALL = 100;
const RECORDS_PER_CALL = 5_000;
/** Connect's Code.InvalidArgument. */
const INVALID_ARGUMENT = 3;
