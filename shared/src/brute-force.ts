/**
 * Per-client failed-credential tracking, as LLM Interactive Proxy does it:
 * after `maxFailedAttempts` invalid credentials within `ttlMs`, the client is
 * refused (429 with Retry-After) until the window that blocked it ends.
 * Memory-only and bounded: the oldest entries go first when full.
 */
export interface BruteForceOptions {
  enabled: boolean;
  maxFailedAttempts: number;
  ttlMs: number;
  /** Most clients tracked at once. */
  maxEntries?: number;
  now?: () => number;
}

interface Entry {
  failures: number;
  windowStart: number;
  blockedUntil: number;
}

export class BruteForceGuard {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly maxEntries: number;

  constructor(private readonly options: BruteForceOptions) {
    this.now = options.now ?? Date.now;
    this.maxEntries = options.maxEntries ?? 100_000;
  }

  get enabled(): boolean {
    return this.options.enabled;
  }

  /** Seconds until the client may try again, or 0 when it is not blocked. */
  retryAfterSeconds(client: string): number {
    if (!this.options.enabled) return 0;
    const e = this.entries.get(client);
    if (!e || e.blockedUntil === 0) return 0;
    const left = e.blockedUntil - this.now();
    if (left > 0) return Math.ceil(left / 1000);
    this.entries.delete(client);
    return 0;
  }

  /** Records an invalid credential; true when this failure blocks the client. */
  recordFailure(client: string): boolean {
    if (!this.options.enabled) return false;
    const now = this.now();
    let e = this.entries.get(client);
    if (!e || now - e.windowStart > this.options.ttlMs) {
      e = { failures: 0, windowStart: now, blockedUntil: 0 };
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    }
    this.entries.delete(client);
    this.entries.set(client, e);
    e.failures++;
    if (e.failures >= this.options.maxFailedAttempts && e.blockedUntil === 0) {
      e.blockedUntil = now + this.options.ttlMs;
      return true;
    }
    return false;
  }

  /** Clients currently blocked, for a gauge. */
  blockedCount(): number {
    const now = this.now();
    let n = 0;
    for (const e of this.entries.values()) if (e.blockedUntil > now) n++;
    return n;
  }
}
