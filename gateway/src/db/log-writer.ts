import type { Logger } from "@tollgate/shared";
import type { GatewayStore } from "./store.js";
import type { AuditEntry } from "./audit-repository.js";
import type { RequestLogEntry } from "./request-log-repository.js";

type Item = { kind: "request"; entry: RequestLogEntry } | { kind: "audit"; entry: AuditEntry };

export interface LogWriterOptions {
  flushIntervalMs?: number;
  /** Rows queued before a write starts without waiting for the interval. */
  maxBatch?: number;
  /** Rows per transaction when writing in the background: one slice per turn of the event loop. */
  sliceRows?: number;
  /** Rows queued at which a push writes everything at once (the background writes fell behind). */
  maxQueued?: number;
}

/**
 * Queues request-log and denial rows in memory and writes them in batches, one
 * transaction each, so the request path never waits on a SQLite write. The
 * background writes go a slice at a time with a turn of the event loop between
 * slices, so requests that arrived meanwhile are served between them rather
 * than after the whole batch (better-sqlite3 is synchronous: a 500-row
 * transaction holds the loop for a few milliseconds).
 */
export class LogWriter {
  private queue: Item[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private closed = false;
  private readonly flushIntervalMs: number;
  private readonly maxBatch: number;
  private readonly sliceRows: number;
  private readonly maxQueued: number;
  private readonly writeBatch: (items: Item[]) => void;
  /** Writers of other batched state (quota consumption, the usage outbox), run in the same transaction. */
  private readonly hooks: Array<() => (() => void) | void> = [];
  /** How to put back what the hooks took, should the batch's transaction fail. */
  private undos: Array<() => void> = [];
  private hookPending = false;

  constructor(
    private readonly store: GatewayStore,
    private readonly logger: Logger,
    options: LogWriterOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 100;
    this.maxBatch = options.maxBatch ?? 500;
    this.sliceRows = options.sliceRows ?? 128;
    this.maxQueued = Math.max(this.maxBatch, options.maxQueued ?? 20_000);
    this.writeBatch = store.db.transaction((items: Item[]) => {
      for (const item of items) {
        if (item.kind === "request") store.requestLog.insert(item.entry);
        else store.audit.insert(item.entry);
      }
      for (const hook of this.hooks) {
        const undo = hook();
        if (undo) this.undos.push(undo);
      }
    });
  }

  request(entry: RequestLogEntry): void {
    this.push({ kind: "request", entry });
  }

  audit(entry: AuditEntry): void {
    this.push({ kind: "audit", entry });
  }

  /**
   * Runs `write` inside every batch transaction. It may return an undo that
   * puts back what it took from memory: called when the transaction fails, so
   * the next batch writes it again (usage must never be lost to one bad batch).
   */
  addFlushHook(write: () => (() => void) | void): void {
    this.hooks.push(write);
  }

  /** A hook has something to write: flush soon even if no row is queued. */
  touch(): void {
    if (this.closed) return;
    this.hookPending = true;
    this.schedule();
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Writes everything queued now. */
  flush(): void {
    this.cancelScheduled();
    this.write(this.queue.length);
  }

  /** Writes up to `max` of the oldest rows (and the hooks' state) in one transaction. */
  private write(max: number): void {
    if ((this.queue.length === 0 && !this.hookPending) || !this.store.db.open) return;
    let items: Item[];
    if (max >= this.queue.length) {
      items = this.queue;
      this.queue = [];
    } else {
      items = this.queue.splice(0, max);
    }
    this.hookPending = false;
    this.undos = [];
    try {
      this.writeBatch(items);
    } catch (err) {
      for (const undo of this.undos) undo();
      if (this.hooks.length > 0) this.touch();
      // Losing a batch of log rows beats failing requests or growing without bound.
      this.logger.error({ err, rows: items.length }, "failed to write request/audit log batch; rows dropped");
    }
  }

  /** One background slice; the rest follows on the next turn of the event loop. */
  private writeSlice = (): void => {
    this.immediate = undefined;
    this.timer = undefined;
    this.write(this.sliceRows);
    if (this.queue.length > 0 && !this.closed) this.immediate = setImmediate(this.writeSlice);
  };

  private cancelScheduled(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.immediate) {
      clearImmediate(this.immediate);
      this.immediate = undefined;
    }
  }

  /** Flushes and stops accepting rows. */
  close(): void {
    this.flush();
    this.closed = true;
  }

  private push(item: Item): void {
    if (this.closed) return;
    this.queue.push(item);
    if (this.queue.length >= this.maxQueued) {
      // The background writes cannot keep up: write on this request rather than grow without bound.
      this.flush();
    } else if (this.queue.length >= this.maxBatch && !this.immediate) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      this.immediate = setImmediate(this.writeSlice);
    } else this.schedule();
  }

  private schedule(): void {
    if (!this.timer && !this.immediate) {
      this.timer = setTimeout(this.writeSlice, this.flushIntervalMs);
      this.timer.unref();
    }
  }
}
