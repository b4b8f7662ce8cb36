/**
 * Unauthenticated denials (bad keys, blocked addresses) are what an attacker can send without
 * limit, and each used to write a request-log and an audit row (about 530 bytes; one client
 * wrote about 2 MB/s). Here only the first denial of each client address in each window
 * writes its rows; the rest are counted in memory and written as one summary row per address
 * when the window ends. Metrics still count every denial. Memory is bounded: past
 * `maxAddresses` distinct addresses in a window, the others share one "(other addresses)" count.
 */
export interface DenialSummary {
  /** The client address, or OTHER_ADDRESSES for the overflow. */
  ip: string;
  windowStart: string;
  /** Denials counted without rows of their own, by reason. */
  suppressed: number;
  reasons: Record<string, number>;
}

export const OTHER_ADDRESSES = "(other addresses)";

interface Entry {
  suppressed: number;
  reasons: Record<string, number>;
}

export class DenialAggregator {
  private window = Number.NaN;
  private entries = new Map<string, Entry>();
  private overflow: Entry = { suppressed: 0, reasons: {} };
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: {
      now: () => number;
      /** Receives the summaries of a finished window (an audit row each). */
      write: (summaries: DenialSummary[]) => void;
      windowMs?: number;
      maxAddresses?: number;
      /** Check for a finished window on a timer too, so a flood that stops is still summarized. */
      tick?: boolean;
    },
  ) {
    if (options.tick !== false) {
      this.timer = setInterval(() => this.rollover(), this.windowMs);
      this.timer.unref();
    }
  }

  private get windowMs(): number {
    return this.options.windowMs ?? 60_000;
  }

  /** Records a denial from `ip`; true when it is the first of its window and writes its own rows. */
  admit(ip: string, reason: string): boolean {
    this.rollover();
    const entry = this.entries.get(ip);
    if (entry === undefined) {
      if (this.entries.size < (this.options.maxAddresses ?? 10_000)) {
        this.entries.set(ip, { suppressed: 0, reasons: {} });
        return true;
      }
      this.count(this.overflow, reason);
      return false;
    }
    this.count(entry, reason);
    return false;
  }

  /** Writes the summaries of a window that has ended (all of them when `force`, at shutdown). */
  rollover(force = false): void {
    const w = Math.floor(this.options.now() / this.windowMs);
    if (w === this.window && !force) return;
    const previous = this.window;
    const summaries: DenialSummary[] = [];
    if (!Number.isNaN(previous)) {
      const windowStart = new Date(previous * this.windowMs).toISOString();
      for (const [ip, e] of this.entries) if (e.suppressed > 0) summaries.push({ ip, windowStart, ...e });
      if (this.overflow.suppressed > 0) summaries.push({ ip: OTHER_ADDRESSES, windowStart, ...this.overflow });
    }
    this.window = w;
    this.entries = new Map();
    this.overflow = { suppressed: 0, reasons: {} };
    if (summaries.length > 0) this.options.write(summaries);
  }

  close(): void {
    clearInterval(this.timer);
    this.rollover(true);
  }

  private count(e: Entry, reason: string): void {
    e.suppressed++;
    e.reasons[reason] = (e.reasons[reason] ?? 0) + 1;
  }
}
