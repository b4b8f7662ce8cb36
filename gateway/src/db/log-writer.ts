import type { Logger } from "@tollgate/shared";
import type { GatewayStore } from "./store.js";
import type { AuditEntry } from "./audit-repository.js";
import type { RequestLogEntry } from "./request-log-repository.js";

type Item = { kind: "request"; entry: RequestLogEntry } | { kind: "audit"; entry: AuditEntry };

export interface LogWriterOptions {
  flushIntervalMs?: number;
  maxBatch?: number;
}

/**
 * Queues request-log and denial rows in memory and writes them in batches, one
 * transaction each, so the request path never waits on a SQLite write.
 */
export class LogWriter {
  private queue: Item[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly flushIntervalMs: number;
  private readonly maxBatch: number;
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
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if ((this.queue.length === 0 && !this.hookPending) || !this.store.db.open) return;
    const items = this.queue;
    this.queue = [];
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

  /** Flushes and stops accepting rows. */
  close(): void {
    this.flush();
    this.closed = true;
  }

  private push(item: Item): void {
    if (this.closed) return;
    this.queue.push(item);
    if (this.queue.length >= this.maxBatch) {
      this.flush();
    } else this.schedule();
  }

  private schedule(): void {
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.flushIntervalMs);
      this.timer.unref();
    }
  }
}
