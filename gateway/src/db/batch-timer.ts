/**
 * When the next log batch goes. A batch goes flushIntervalMs after the first
 * row waits, so a slow trickle of requests does not cost a transaction (and
 * its WAL pages) each; once burstRows wait, it goes early, but no sooner than
 * minBatchGapMs after the last batch, so under load batches stay small and
 * grow with the rate (see bench/README.md).
 *
 * At a high rate (the last batch's rows came faster than busyRowsPerMs), the
 * gap is busyGapMs instead: every batch costs the writer thread a wake-up on
 * cold caches, a commit and its WAL pages, more than its rows' inserts once
 * batches come every 5 ms, so there fewer, larger batches spend less CPU per
 * row (bench/results/HISTORY.md, "The request log's hand-off"). Below that
 * rate (one connection at a time) the small, frequent batches that keep the
 * latency tail short are unchanged.
 */
export class BatchTimer {
  private timer: NodeJS.Timeout | undefined;
  /** The timer set is the early one (burstRows reached). */
  private early = false;
  /** When the timer set is due (performance.now()). */
  private dueAt = Infinity;
  /** When the last batch went (performance.now()). */
  private lastSendAt = -Infinity;
  /** The gap before the next early batch: minBatchGapMs, or busyGapMs at a high rate. */
  private gapMs: number;

  constructor(
    private readonly send: () => void,
    private readonly flushIntervalMs: number,
    private readonly minBatchGapMs: number,
    private readonly busy: { rowsPerMs: number; gapMs: number } = { rowsPerMs: Infinity, gapMs: minBatchGapMs },
  ) {
    this.gapMs = minBatchGapMs;
  }

  get armed(): boolean {
    return this.timer !== undefined;
  }

  /** A batch of `rows` went now: the rate they came at sets the gap before the next early batch. */
  sent(rows = 0): void {
    const now = performance.now();
    const rowsPerMs = rows / Math.max(1, now - this.lastSendAt);
    this.gapMs = rowsPerMs >= this.busy.rowsPerMs ? Math.max(this.minBatchGapMs, this.busy.gapMs) : this.minBatchGapMs;
    this.lastSendAt = now;
  }

  /** The gap before the next early batch (tests, diagnostics). */
  get currentGapMs(): number {
    return this.gapMs;
  }

  cancel(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.early = false;
  }

  /** A batch goes flushIntervalMs from now, unless one is due already. */
  schedule(): void {
    if (!this.timer) this.arm(this.flushIntervalMs, false);
  }

  /** burstRows wait: the batch goes the gap (minBatchGapMs, or busyGapMs) after the last one (or now), unless one is due sooner. */
  scheduleEarly(): void {
    if (this.early) return;
    const now = performance.now();
    const delay = Math.max(0, this.lastSendAt + this.gapMs - now);
    if (this.timer && now + delay >= this.dueAt) return;
    this.cancel();
    this.arm(delay, true);
  }

  /** A retry after failed batches, unless a batch is due already. */
  retryIn(delayMs: number): void {
    if (this.timer) return;
    this.dueAt = performance.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.send();
    }, delayMs);
    this.timer.unref();
  }

  private arm(delayMs: number, early: boolean): void {
    this.early = early;
    this.dueAt = performance.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.early = false;
      this.send();
    }, delayMs);
    this.timer.unref();
  }
}
