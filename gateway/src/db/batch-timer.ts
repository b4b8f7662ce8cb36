/**
 * When the next log batch goes. A batch goes flushIntervalMs after the first
 * row waits, so a slow trickle of requests does not cost a transaction (and
 * its WAL pages) each; once burstRows wait, it goes early, but no sooner than
 * minBatchGapMs after the last batch, so under load batches stay small and
 * grow with the rate (see bench/README.md).
 */
export class BatchTimer {
  private timer: NodeJS.Timeout | undefined;
  /** The timer set is the early one (burstRows reached). */
  private early = false;
  /** When the timer set is due (performance.now()). */
  private dueAt = Infinity;
  /** When the last batch went (performance.now()). */
  private lastSendAt = -Infinity;

  constructor(
    private readonly send: () => void,
    private readonly flushIntervalMs: number,
    private readonly minBatchGapMs: number,
  ) {}

  get armed(): boolean {
    return this.timer !== undefined;
  }

  /** A batch went now. */
  sent(): void {
    this.lastSendAt = performance.now();
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

  /** burstRows wait: the batch goes minBatchGapMs after the last one (or now), unless one is due sooner. */
  scheduleEarly(): void {
    if (this.early) return;
    const now = performance.now();
    const delay = Math.max(0, this.lastSendAt + this.minBatchGapMs - now);
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
