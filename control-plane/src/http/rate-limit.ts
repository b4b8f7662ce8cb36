import { addressBucket } from "@tollgate/shared";

/**
 * A token bucket per client address: `perMinute` tokens, refilled evenly over a
 * minute, one spent per allowed call. Used where each call costs the control
 * plane a database row (starting an SSO sign-in), so one address cannot fill
 * the table or the provider's quota. An IPv6 client counts by its /64, the
 * block one host or site usually holds.
 *
 * Memory is bounded: at most `maxClients` buckets are kept, and when that many
 * are live the least recently used bucket is dropped. What it does not bound:
 * many addresses each get their own bucket (and a dropped one starts full), and
 * each control-plane replica keeps its own; a flood from many addresses is for
 * the network in front (rate limits at the ingress), as for any public endpoint.
 */
export class ClientRateLimiter {
  /**
   * Per client, the "theoretical arrival time" of GCRA (the token bucket kept as
   * one number): the bucket is full when it is in the past, empty when it is a
   * minute ahead. Whole milliseconds, so refills add up exactly.
   */
  private readonly due = new Map<string, number>();
  private readonly intervalMs: number;

  constructor(
    perMinute: number,
    private readonly maxClients = 10_000,
    private readonly now: () => number = Date.now,
  ) {
    this.intervalMs = 60_000 / perMinute;
  }

  /** Spends one token of `client`: 0 when allowed, else the whole seconds until one is back. */
  take(address: string): number {
    const client = addressBucket(address);
    const now = this.now();
    const held = this.due.get(client);
    if (held !== undefined)
      this.due.delete(client); // re-inserted below: Map order is least recently used first
    else if (this.due.size >= this.maxClients) this.due.delete(this.due.keys().next().value!);
    const due = Math.max(held ?? now, now);
    const wait = due + this.intervalMs - now - 60_000;
    if (wait > 0) {
      this.due.set(client, due);
      return Math.max(1, Math.ceil(wait / 1000));
    }
    this.due.set(client, due + this.intervalMs);
    return 0;
  }

  /** Buckets held now (for tests and the bound above). */
  get size(): number {
    return this.due.size;
  }
}
