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

/** The control plane's QuotaService.ReportUsage, as the outbox needs it. */
export interface UsageRpc {
  reportUsage(reports: OutboxRow[]): Promise<number[]>;
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
  private readonly insert;
  private readonly selectBatch;
  private readonly deleteSeq;
  private readonly countRows;
  private sending: Promise<void> | null = null;
  private failures = 0;
  private nextTryMs = 0;

  constructor(
    private readonly db: Database,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {
    this.insert = db.prepare<[number, string]>(`INSERT INTO usage_outbox (created_at_ms, records) VALUES (?, ?)`);
    this.selectBatch = db.prepare<[number], { seq: number; records: string }>(`SELECT seq, records FROM usage_outbox ORDER BY seq LIMIT ?`);
    this.deleteSeq = db.prepare<[number]>(`DELETE FROM usage_outbox WHERE seq = ?`);
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
      r = { keyId: d.keyId, userId: d.userId, teamId: d.teamId, day, requests: 0, inputTokens: 0, outputTokens: 0, costMicroUsd: 0, lastUsedAtMs: 0 };
      this.pending.set(id, r);
    }
    r.requests += 1;
    r.inputTokens += d.inputTokens;
    r.outputTokens += d.outputTokens;
    r.costMicroUsd += d.costMicroUsd;
    if (d.atMs > r.lastUsedAtMs) r.lastUsedAtMs = d.atMs;
  }

  /** Writes the totals gathered since the last call as one row; call inside the log batch transaction. */
  writePending(): void {
    if (this.pending.size === 0) return;
    const records = [...this.pending.values()];
    this.pending = new Map();
    this.insert.run(this.now(), JSON.stringify(records));
  }

  get backlog(): number {
    return this.db.open ? this.countRows.get()!.n : 0;
  }

  /** Reports what waits, in order, until the outbox is empty or the control plane fails (then backs off). */
  send(rpc: UsageRpc, force = false): Promise<void> {
    if (this.sending) return this.sending;
    if (!force && this.now() < this.nextTryMs) return Promise.resolve();
    this.sending = this.drain(rpc).finally(() => {
      this.sending = null;
    });
    return this.sending;
  }

  private async drain(rpc: UsageRpc): Promise<void> {
    for (;;) {
      if (!this.db.open) return;
      const rows = this.selectBatch.all(100).map((r) => ({ seq: r.seq, records: JSON.parse(r.records) as OutboxRecord[] }));
      if (rows.length === 0) return;
      let acked: number[];
      try {
        acked = await rpc.reportUsage(rows);
      } catch (err) {
        this.failures++;
        const delay = Math.min(30_000, 500 * 2 ** Math.min(this.failures, 6));
        this.nextTryMs = this.now() + delay;
        if (this.failures === 1 || this.failures % 10 === 0) {
          this.logger.warn({ err: (err as Error).message, waiting: rows.length, retryInMs: delay }, "usage report to the control plane failed; kept in the outbox, will retry");
        }
        return;
      }
      this.failures = 0;
      if (!this.db.open) return;
      const del = this.db.transaction((seqs: number[]) => {
        for (const s of seqs) this.deleteSeq.run(s);
      });
      del(acked);
      if (rows.length < 100) return;
    }
  }
}
