import { CounterKind } from "@tollgate/shared";
import type { Logger } from "@tollgate/shared";
import type { Clock } from "../clock.js";
import { FleetClock } from "./fleet-clock.js";
import { Lease, Reservation, takeDirty, type DirtyWindows, type Needs, type Refusal, type Taken } from "./lease.js";
import type { LimitSpec, Metric } from "./limits.js";
import { windowOf } from "./limits.js";
import { applyFallbackShare, applyGrants, planBatch, statementsOf, type Batch } from "./lease-batch.js";
import type { QuotaRpc } from "./quota-rpc.js";
import { planUpkeep } from "./lease-upkeep.js";

export interface QuotaManagerOptions {
  /** Renew held units this often (well inside the control plane's lease TTL). */
  renewEveryMs?: number;
  /** Give held units back after this long unused. */
  idleReleaseMs?: number;
  /** After a short grant, refuse locally for this long before asking again. */
  refuseCacheMs?: number;
  /** Share of the capacity fetched ahead of demand while the fleet is far from the limit. */
  prefetchFraction?: number;
  /** The fleet's time; by default one measured from this manager's Acquires, reported to no one. */
  time?: FleetClock;
  /** Loads consumed units persisted before a restart (window counters only). */
  loadConsumed?: (counter: string, window: string) => number;
  /** Told when the control plane's quota service becomes unreachable, and reachable again. */
  onDegraded?: (degraded: boolean) => void;
  /** Told when the fleet size used by the fallback changes (persisted for restarts without the control plane). */
  onActiveGateways?: (n: number) => void;
}

const EMPTY = new Reservation([]);
/** The control plane's limit per Acquire call. */
const MAX_COUNTERS_PER_CALL = 200;

/**
 * Fleet-wide quotas, enforced in memory: each request takes units from leases
 * this gateway holds; only when a lease runs short does it ask the control
 * plane (one coalesced Acquire for every waiting request). If the control
 * plane cannot be reached, each counter falls back to an even share of its
 * capacity among the gateways last seen active, so the fleet stays bounded.
 */
export class QuotaManager {
  private readonly leases = new Map<string, Lease>();
  /** The lease each spec used last: found without building its `counter|window` id on every request. */
  private readonly leaseOfSpec = new WeakMap<LimitSpec, Lease>();
  private rpc: QuotaRpc | null = null;
  private inflight: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  /** Most gateways seen active on any counter in the last 10 minutes (for the even-share fallback). */
  private activeGateways = 1;
  private activeSeenAtMs = 0;
  private degradedSinceMs: number | null = null;
  private readonly renewEveryMs: number;
  private readonly idleReleaseMs: number;
  private readonly refuseCacheMs: number;
  private readonly prefetchFraction: number;
  private readonly loadConsumed: ((counter: string, window: string) => number) | undefined;
  private readonly onDegraded: ((degraded: boolean) => void) | undefined;
  private readonly onActiveGateways: ((n: number) => void) | undefined;
  /**
   * The control plane's time, measured on every Acquire: windows, their ends and
   * Retry-After follow it, so the fleet agrees on them whatever this host's clock
   * says. Durations (idle, renewal, refusal cache) stay on the local clock, which
   * a correction does not make jump.
   */
  readonly time: FleetClock;

  /** The fleet size last known (from before a restart). */
  setActiveGateways(n: number): void {
    if (Number.isSafeInteger(n) && n >= 1) this.activeGateways = n;
  }

  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
    options: QuotaManagerOptions = {},
  ) {
    this.renewEveryMs = options.renewEveryMs ?? 10_000;
    this.idleReleaseMs = options.idleReleaseMs ?? 10_000;
    this.refuseCacheMs = options.refuseCacheMs ?? 100;
    this.prefetchFraction = options.prefetchFraction ?? 0.02;
    this.time = options.time ?? new FleetClock(clock, logger);
    this.loadConsumed = options.loadConsumed;
    this.onDegraded = options.onDegraded;
    this.onActiveGateways = options.onActiveGateways;
  }

  setRpc(rpc: QuotaRpc): void {
    this.rpc = rpc;
  }

  get degraded(): boolean {
    return this.degradedSinceMs !== null;
  }

  get size(): number {
    return this.leases.size;
  }

  /** The lease of a spec's current window; nowMs on the local clock. */
  private lease(spec: LimitSpec, nowMs: number): Lease {
    const { window, endsAtMs } = windowOf(spec.period, this.time.at(nowMs));
    const cached = this.leaseOfSpec.get(spec);
    if (cached !== undefined && cached.window === window && !cached.dropped) {
      cached.capacity = spec.capacity;
      return cached;
    }
    const id = `${spec.counter}|${window}`;
    let l = this.leases.get(id);
    if (!l) {
      l = new Lease(spec, window, endsAtMs);
      if (spec.kind === CounterKind.WINDOW && this.loadConsumed) {
        l.consumed = this.loadConsumed(spec.counter, window);
        l.statedConsumed = -1; // state it at the next upkeep even if no request needs more
        // Consumed before a restart: stated again in the first Acquire, so the fleet keeps counting it.
        l.fleetUsed = l.consumed;
      }
      this.leases.set(id, l);
    }
    l.capacity = spec.capacity;
    this.leaseOfSpec.set(spec, l);
    return l;
  }

  /** At least one unit each: a spent limit refuses even a request estimated at nothing (an unpriced model). */
  private needOf(metric: Metric, needs: Needs, lease: Lease): number {
    switch (metric) {
      case "rpm":
      case "concurrency":
        return 1;
      case "tpm":
      case "tpd":
        return Math.max(1, this.fit(Math.ceil(needs.tokens), lease, needs));
      case "budget":
        return Math.max(1, this.fit(Math.ceil(needs.costMicroUsd), lease, needs));
    }
  }

  /** An uncapped request reserves at most what is left of the limit as far as this gateway knows. */
  private fit(amount: number, lease: Lease, needs: Needs): number {
    return needs.outputCapped === false ? Math.min(amount, lease.remaining()) : amount;
  }

  /**
   * Reserves what a request needs from every limit, or says which refused.
   * Synchronous (memory only) when the held units suffice.
   */
  admit(specs: readonly LimitSpec[], needs: Needs): Reservation | Refusal | Promise<Reservation | Refusal> {
    if (specs.length === 0) return EMPTY;
    const now = this.clock.now();
    const entries: Taken[] = specs.map((s) => {
      const lease = this.lease(s, now);
      const uncapped = needs.outputCapped === false && s.metric !== "rpm" && s.metric !== "concurrency";
      return { lease, metric: s.metric, amount: this.needOf(s.metric, needs, lease), uncapped };
    });
    // A request without an output cap may use more than it reserved, and so may every one in
    // flight with it. Keep as much of the limit free as such requests have reserved in flight
    // (room for each to use twice its reservation); near the end that means one at a time
    // per gateway, so the overrun past the limit stays within about one request per gateway.
    const blocked = this.endgame(entries, now);
    if (blocked) return blocked;
    if (this.tryTake(entries, now)) return new Reservation(entries);
    // A counter the fleet just said is spent: refuse without asking again.
    for (const e of entries) {
      if (e.lease.held < e.amount && e.lease.shortAtMs >= 0 && now - e.lease.shortAtMs < this.refuseCacheMs)
        return this.refusal(e.lease, now);
      // More than the whole capacity can never fit.
      if (e.amount > e.lease.capacity) return this.refusal(e.lease, now);
    }
    return this.admitSlow(entries, needs);
  }

  /** Whether `needs` fit, from memory, in what this gateway holds on every token and budget limit (enforce.ts). */
  holds(specs: readonly LimitSpec[], needs: Needs): boolean {
    for (const s of specs) {
      if (s.metric === "rpm" || s.metric === "concurrency") continue;
      const l = this.lease(s, this.clock.now());
      const need = s.metric === "budget" ? needs.costMicroUsd : needs.tokens;
      if (l.held < need || l.remaining() - need < l.uncappedReserved) return false;
    }
    return true;
  }

  private endgame(entries: Taken[], now: number): Refusal | null {
    for (const e of entries) {
      const l = e.lease;
      if (e.uncapped && l.uncappedReserved > 0 && l.remaining() - e.amount < l.uncappedReserved) {
        return { ...this.refusal(l, now), retryAfterMs: 1000, throttled: true };
      }
    }
    return null;
  }

  private tryTake(entries: Taken[], now: number): boolean {
    for (const e of entries) if (e.amount > 0 && e.lease.held < e.amount) return false;
    for (const e of entries) {
      e.lease.held -= e.amount;
      e.lease.reserved += e.amount;
      e.lease.lastUseMs = now;
      if (e.uncapped) e.lease.uncappedReserved += e.amount;
    }
    return true;
  }

  private async admitSlow(entries: Taken[], needs: Needs): Promise<Reservation | Refusal> {
    const askedAt = this.clock.now();
    for (let attempt = 0; attempt < 3; attempt++) {
      const lacking = entries.filter((e) => e.amount > 0 && e.lease.held < e.amount);
      for (const e of lacking) e.lease.pending += e.amount;
      try {
        await this.acquireSoon();
      } finally {
        for (const e of lacking) e.lease.pending -= e.amount;
      }
      const now = this.clock.now();
      // The answer may have corrected this gateway's clock (or a window ended while it waited):
      // take from the window the fleet is in now, not the one the request started in.
      let moved = false;
      for (const e of entries) {
        const current = this.lease(e.lease.spec, now);
        if (current !== e.lease) {
          e.lease = current;
          moved = true;
        }
      }
      // The grant told this gateway what the fleet has left: a request without an output cap
      // reserves at most that, rather than be refused for want of its default reservation.
      for (const e of entries) if (e.uncapped) e.amount = this.needOf(e.metric, needs, e.lease);
      const blocked = this.endgame(entries, now);
      if (blocked) return blocked;
      if (this.tryTake(entries, now)) {
        // Served with what the fleet had left: for a request without an output cap that is no shortage.
        for (const e of entries) if (e.uncapped) e.lease.shortAtMs = -1;
        return new Reservation(entries);
      }
      const short = moved
        ? undefined
        : entries.find((e) => e.amount > 0 && e.lease.held < e.amount && e.lease.shortAtMs >= askedAt);
      if (short) return this.refusal(short.lease, now);
      // Requests that waited alongside took the grant first: ask again.
    }
    const e = entries.find((x) => x.amount > 0 && x.lease.held < x.amount)!;
    return this.refusal(e.lease, this.clock.now());
  }

  private refusal(lease: Lease, now: number): Refusal {
    const retryAfterMs =
      lease.spec.kind === CounterKind.GAUGE
        ? 1000
        : lease.endsAtMs > 0
          ? Math.max(0, lease.endsAtMs - this.time.at(now))
          : null;
    return { refused: true, spec: lease.spec, lease, retryAfterMs };
  }

  /**
   * Settles a reservation with what the request really used: tokens and cost
   * from the provider's usage (null: unknown, the reservation stands), and
   * the concurrency slot back to this gateway's pool.
   */
  settle(r: Reservation, actual: { tokens: number | null; costMicroUsd: number | null }): void {
    if (r.settled) return;
    r.settled = true;
    let trim = false;
    for (const t of r.taken) {
      const l = t.lease;
      l.reserved -= t.amount;
      if (t.uncapped) l.uncappedReserved -= t.amount;
      if (t.metric === "concurrency") {
        l.held += t.amount; // the slot goes back to this gateway's pool
        continue;
      }
      // Unknown usage (an error, a client that left): the reservation stands as the best estimate.
      const real = t.metric === "rpm" ? t.amount : t.metric === "budget" ? actual.costMicroUsd : actual.tokens;
      const used = real === null ? t.amount : Math.max(0, Math.round(real));
      l.consumed += used;
      l.held += t.amount - used;
      l.dirty = true;
      // A large refund (an uncapped request's reservation) would sit idle here while other
      // gateways go short: give back what exceeds the prefetch at once.
      if (l.held > 2 * this.prefetch(l) && l.held > 0 && l.reserved === 0 && l.pending === 0) {
        l.restate = "trim";
        trim = true;
      }
    }
    if (trim) this.acquireSoon().catch(() => undefined);
  }

  /** Runs an Acquire for the waiting demand soon, coalescing callers; resolves once a call made after this one was asked answers. */
  private acquireSoon(): Promise<void> {
    if (!this.inflight) {
      this.inflight = this.runAcquire().finally(() => {
        this.inflight = null;
      });
      return this.inflight;
    }
    // The call in flight was built before this demand: wait for the next one.
    this.queued ??= this.inflight
      .catch(() => undefined)
      .finally(() => {
        this.queued = null;
      })
      .then(() => this.acquireSoon());
    return this.queued;
  }

  private prefetch(l: Lease): number {
    if (l.spec.kind === CounterKind.GAUGE) return 0;
    const free = l.capacity - l.fleetUsed;
    return free > l.capacity * 0.2 ? Math.floor(l.capacity * this.prefetchFraction) : 0;
  }

  private async runAcquire(): Promise<void> {
    // Let requests arriving in the same turn of the event loop join this call.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const now = this.clock.now();
    const batch = planBatch(this.leases.values(), (l) => this.prefetch(l));
    for (let i = 0; i < batch.length; i += MAX_COUNTERS_PER_CALL)
      await this.send(batch.slice(i, i + MAX_COUNTERS_PER_CALL), now);
  }

  private async send(batch: Batch, now: number): Promise<void> {
    try {
      await this.sendOnce(batch, now);
    } finally {
      for (const b of batch) b.lease.returning -= b.returned;
    }
  }

  private async sendOnce(batch: Batch, now: number): Promise<void> {
    const statements = statementsOf(batch);
    try {
      if (!this.rpc) throw new Error("the quota service is not connected yet");
      const sentAt = this.clock.now();
      const res = await this.rpc.acquire(statements);
      if (res.serverTime) this.time.sample(sentAt, res.serverTime.tookMs, res.serverTime.sentMs, this.clock.now());
      if (res.activeGateways >= this.activeGateways || now - this.activeSeenAtMs > 600_000) {
        const n = Math.max(1, res.activeGateways);
        if (n !== this.activeGateways) this.onActiveGateways?.(n);
        this.activeGateways = n;
        this.activeSeenAtMs = now;
      }
      applyGrants(batch, res.grants, now, () => this.clock.now());
      if (this.degradedSinceMs !== null) {
        this.logger.info(
          { degradedForMs: now - this.degradedSinceMs },
          "quota service reachable again: fleet-wide leases resumed",
        );
        this.degradedSinceMs = null;
        this.onDegraded?.(false);
      }
    } catch (err) {
      if (this.degradedSinceMs === null) {
        this.degradedSinceMs = now;
        this.onDegraded?.(true);
        this.logger.warn(
          { err: (err as Error).message, activeGateways: this.activeGateways },
          `quota service unreachable: each counter falls back to 1/${this.activeGateways} of its limit on this gateway until it answers again`,
        );
      }
      applyFallbackShare(batch, this.activeGateways, () => this.clock.now());
    }
  }

  /**
   * Periodic upkeep: forget ended windows, renew held units in use, give back
   * idle ones, so other gateways can have them.
   */
  maintain(): Promise<void> {
    const any = planUpkeep(this.leases, this.clock.now(), this.time, {
      idleReleaseMs: this.idleReleaseMs,
      renewEveryMs: this.renewEveryMs,
    });
    return any ? this.acquireSoon() : Promise.resolve();
  }

  /** The lease of a metric with the least left among these limits, when this gateway has one (for headers); nowMs in fleet time. */
  tightestKnown(specs: readonly LimitSpec[], metric: Metric, nowMs: number): Lease | null {
    let best: Lease | null = null;
    for (const s of specs) {
      if (s.metric !== metric) continue;
      const l = this.leases.get(`${s.counter}|${windowOf(s.period, nowMs).window}`);
      if (l && (!best || l.remaining() < best.remaining())) best = l;
    }
    return best;
  }

  /** Window counters whose consumption changed since the last call (to persist), and how to mark them dirty again if the write fails. */
  takeDirty(): DirtyWindows {
    return takeDirty(this.leases.values());
  }

  /** Gives every held unit back (at shutdown). */
  async releaseAll(): Promise<void> {
    for (const l of this.leases.values())
      if (l.held > 0 || l.reserved > 0 || l.consumed !== l.statedConsumed) l.restate = "release";
    await this.acquireSoon();
  }
}
