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
  /** Most clients with failures (not yet blocked) tracked at once. */
  maxEntries?: number;
  /** Most blocked clients held at once. */
  maxBlocked?: number;
  now?: () => number;
}

interface Entry {
  failures: number;
  windowStart: number;
}

/**
 * Failures and blocks live in two tables. Failures from many addresses (cheap to send from a
 * botnet or an IPv6 prefix) evict only other failure counts, never a block: an attacker cannot
 * push its own block out by failing from 100,000 other addresses. Blocks are bounded too, and
 * only another block evicts one (the one ending soonest, as all last the same TTL).
 */
export class BruteForceGuard {
  private readonly failures = new Map<string, Entry>();
  private readonly blocked = new Map<string, number>();
  private readonly now: () => number;
  private readonly maxEntries: number;
  private readonly maxBlocked: number;

  constructor(private readonly options: BruteForceOptions) {
    this.now = options.now ?? Date.now;
    this.maxEntries = options.maxEntries ?? 100_000;
    this.maxBlocked = options.maxBlocked ?? 100_000;
  }

  get enabled(): boolean {
    return this.options.enabled;
  }

  /** Seconds until the client may try again, or 0 when it is not blocked. */
  retryAfterSeconds(client: string): number {
    if (!this.options.enabled) return 0;
    const until = this.blocked.get(client);
    if (until === undefined) return 0;
    const left = until - this.now();
    if (left > 0) return Math.ceil(left / 1000);
    this.blocked.delete(client);
    return 0;
  }

  /** Records an invalid credential; true when this failure blocks the client. */
  recordFailure(client: string): boolean {
    if (!this.options.enabled) return false;
    const now = this.now();
    if ((this.blocked.get(client) ?? 0) > now) return false;
    let e = this.failures.get(client);
    if (!e || now - e.windowStart > this.options.ttlMs) {
      e = { failures: 0, windowStart: now };
      if (!this.failures.has(client) && this.failures.size >= this.maxEntries)
        this.failures.delete(this.failures.keys().next().value!);
    }
    this.failures.delete(client);
    this.failures.set(client, e);
    e.failures++;
    if (e.failures < this.options.maxFailedAttempts) return false;
    this.failures.delete(client);
    this.blocked.delete(client);
    if (this.blocked.size >= this.maxBlocked) this.blocked.delete(this.blocked.keys().next().value!);
    this.blocked.set(client, now + this.options.ttlMs);
    return true;
  }

  /** Clients currently blocked, for a gauge. */
  blockedCount(): number {
    const now = this.now();
    let n = 0;
    for (const until of this.blocked.values()) if (until > now) n++;
    return n;
  }
}
