import type { Logger } from "@tollgate/shared";
import type { Database } from "better-sqlite3";
import { META_UPSERT_SQL } from "../db/meta-repository.js";
import {
  formatPosition,
  parsePosition,
  type JournalPosition,
  type JournalUsage,
  type UsageJournal,
} from "../db/usage-journal.js";

/** One request's usage, as it is reported (and journaled). */
export type UsageDelta = JournalUsage;

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

/** The meta row holding the usage journal's checkpoint: every journal line before it is in an outbox row. */
export const JOURNAL_CHECKPOINT_META_KEY = "usage_journal_checkpoint";

/** What one log batch takes from the outbox (see takePending). */
export interface PendingTake {
  /** OUTBOX_INSERT_SQL's parameters; null when nothing was taken. */
  row: [createdAtMs: number, records: string] | null;
  /** META_UPSERT_SQL's parameters for the journal checkpoint, to write in the same transaction; null without a journal. */
  checkpoint: [key: string, value: string] | null;
  /** The transaction failed: the totals go back into memory for the next batch. */
  undo: () => void;
  /** The transaction committed: the journal segments before the checkpoint can go. */
  done: () => void;
}

const NOTHING_TAKEN: PendingTake = { row: null, checkpoint: null, undo: () => undefined, done: () => undefined };

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
  /**
   * The usage journal (usage-journal.ts): every add() is appended to it first, so
   * usage not yet in an outbox row survives a kill -9; what it holds after the
   * checkpoint is replayed into the outbox here, in the constructor.
   */
  journal?: UsageJournal;
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
  private readonly journal: UsageJournal | undefined;
  /** A take with a checkpoint is being written: the next waits for it, so checkpoints commit in order. */
  private taking = false;

  constructor({ db, logger, now, remove, journal }: UsageOutboxOptions) {
    this.db = db;
    this.logger = logger;
    this.now = now;
    this.remove = remove;
    this.journal = journal;
    this.selectBatch = db.prepare<[number], { seq: number; records: string }>(
      `SELECT seq, records FROM usage_outbox ORDER BY seq LIMIT ?`,
    );
    this.deleteSeq = db.prepare<[number]>(OUTBOX_DELETE_SQL);
    this.countRows = db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM usage_outbox`);
    if (journal) this.replay(journal);
  }

  /**
   * Before serving: the journal's lines after the checkpoint go into one outbox
   * row, committed with the new checkpoint in one transaction, so they count
   * exactly once whatever point a kill -9 hit (see usage-journal.ts).
   */
  private replay(journal: UsageJournal): void {
    const getMeta = this.db.prepare<[string], { value: string }>(`SELECT value FROM meta WHERE key = ?`);
    const from = parsePosition(getMeta.get(JOURNAL_CHECKPOINT_META_KEY)?.value);
    const found = journal.recover(from);
    const totals = new Map<string, OutboxRecord>();
    for (const u of found.entries) this.accumulate(totals, u);
    const to = journal.position();
    const upsert = this.db.prepare<[string, string]>(META_UPSERT_SQL);
    const insert = this.db.prepare<[number, string]>(OUTBOX_INSERT_SQL);
    this.db
      .transaction(() => {
        if (totals.size > 0) insert.run(this.now(), JSON.stringify([...totals.values()]));
        upsert.run(JOURNAL_CHECKPOINT_META_KEY, formatPosition(to));
      })
      .immediate();
    journal.committed(to);
    if (found.entries.length > 0 || found.skipped > 0 || found.duplicates > 0) {
      this.logger.info(
        { requests: found.entries.length, skippedLines: found.skipped, duplicateLines: found.duplicates },
        "usage journal replayed into the outbox: usage settled before the last stop, not yet in SQLite",
      );
    }
  }

  /** Closes the journal (after the log writer's last batch). */
  close(): void {
    this.journal?.close();
  }

  /** The UTC day last formatted, and the span of milliseconds it covers. */
  private lastDay = { day: "", startMs: 0, endMs: 0 };

  /** Counts one request's usage: in the journal first (one write), then in memory until the next outbox row. */
  add(d: UsageDelta): void {
    this.journal?.append(d);
    this.accumulate(this.pending, d);
  }

  /**
   * add() for a request about to be answered: its journal line goes with the other
   * lines of this event-loop turn in one write. The answer's last bytes wait for the
   * promise returned (undefined: nothing to wait for), so its usage is as safe from a
   * kill -9 as add()'s.
   */
  addBeforeAnswer(d: UsageDelta): Promise<void> | undefined {
    const journal = this.journal;
    if (!journal) {
      this.accumulate(this.pending, d);
      return undefined;
    }
    journal.enqueue(d);
    this.accumulate(this.pending, d);
    return journal.written();
  }

  private accumulate(totals: Map<string, OutboxRecord>, d: UsageDelta): void {
    let last = this.lastDay;
    if (d.atMs < last.startMs || d.atMs >= last.endMs) {
      const startMs = Math.floor(d.atMs / 86_400_000) * 86_400_000;
      last = this.lastDay = { day: new Date(d.atMs).toISOString().slice(0, 10), startMs, endMs: startMs + 86_400_000 };
    }
    const day = last.day;
    const id = `${d.keyId}|${day}`;
    let r = totals.get(id);
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
      totals.set(id, r);
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
   * Takes the totals gathered since the last call, for one log batch: its
   * outbox row and the journal checkpoint (every line appended so far), both
   * written in the batch's transaction. With a journal, one take is written at
   * a time (NOTHING_TAKEN meanwhile): a later checkpoint committed before an
   * earlier take failed would skip that take's lines at a replay.
   */
  takePending(): PendingTake {
    if (this.taking || this.pending.size === 0) return NOTHING_TAKEN;
    const taken = this.pending;
    this.pending = new Map();
    const journal = this.journal;
    let at: JournalPosition | null = null;
    if (journal) {
      journal.rotateIfLarge();
      at = journal.position();
      this.taking = true;
    }
    return {
      row: [this.now(), JSON.stringify([...taken.values()])],
      checkpoint: at ? [JOURNAL_CHECKPOINT_META_KEY, formatPosition(at)] : null,
      undo: () => {
        this.taking = false;
        this.merge(taken);
      },
      done: () => {
        this.taking = false;
        if (journal && at) journal.committed(at);
      },
    };
  }

  /** Puts totals taken by a failed batch back into memory. */
  private merge(taken: Map<string, OutboxRecord>): void {
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
  }

  /** A take is being written (the next batch cannot take until it is done). */
  get busy(): boolean {
    return this.taking;
  }

  /** Usage is waiting in memory for the next outbox row. */
  get hasPending(): boolean {
    return this.pending.size > 0;
  }

  /** The usage journal's failed opens and writes (0 without a journal). */
  get journalFailures(): number {
    return this.journal?.failureCount ?? 0;
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
