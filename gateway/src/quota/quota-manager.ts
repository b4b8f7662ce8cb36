import { CounterKind } from "@tollgate/shared";
import type { Logger } from "@tollgate/shared";
import type { Clock } from "../context.js";
import type { LimitSpec, Metric } from "./limits.js";
import { windowOf } from "./limits.js";

/** One counter statement sent to the control plane. */
export interface Statement {
  counter: string;
  window: string;
  kind: CounterKind;
  capacity: number;
  consumed: number;
  wantHeld: number;
  windowEndsAtMs: number;
}

export interface Grant {
  counter: string;
  window: string;
  held: number;
  fleetUsed: number;
}

/** The control plane's QuotaService.Acquire, as the manager needs it. */
export interface QuotaRpc {
  acquire(statements: Statement[]): Promise<{ grants: Grant[]; activeGateways: number }>;
}

/**
 * This gateway's share of one fleet-wide counter window. Local operations move
 * units between `held` and `consumed` and never change their sum; only a grant
 * from the control plane does. `held` may go below zero when a request used
 * more than it reserved: a debt the next grant pays first.
 */
export class Lease {
  consumed = 0;
  held = 0;
  /** The whole fleet's consumed + held at the last grant. */
  fleetUsed = 0;
  /** Units that waiting requests need (the next Acquire asks for them). */
  pending = 0;
  lastUseMs = 0;
  lastStatementMs = 0;
  /** The last grant was smaller than asked: the fleet has no more right now. */
  shortAtMs = -1;
  /** Set by maintenance: state this lease in the next Acquire (renewal or release). */
  restate: "renew" | "release" | null = null;
  /** Consumed changed since it was last persisted. */
  dirty = false;
  /** Forgotten by maintenance (its window ended): a spec's cached lease must not be reused. */
  dropped = false;
  capacity: number;

  constructor(
    readonly spec: LimitSpec,
    readonly window: string,
    readonly endsAtMs: number,
  ) {
    this.capacity = spec.capacity;
  }

  get id(): string {
    return `${this.spec.counter}|${this.window}`;
  }

  /** What is left for this gateway as far as it knows: the fleet's remainder plus its own unused units. */
  remaining(): number {
    return Math.max(0, Math.min(this.capacity - this.fleetUsed + Math.max(0, this.held), this.capacity - this.consumed));
  }
}

export interface Needs {
  /** Estimated tokens (prompt + maximum output). */
  tokens: number;
  /** Estimated cost in micro-USD. */
  costMicroUsd: number;
}

interface Taken {
  lease: Lease;
  metric: Metric;
  amount: number;
}

/** Units reserved for one request, settled once it ends. */
export class Reservation {
  settled = false;
  constructor(readonly taken: Taken[]) {}

  /** The lease of a metric (the tightest when several apply), for rate-limit headers. */
  tightest(metric: Metric): Lease | null {
    let best: Lease | null = null;
    for (const t of this.taken) if (t.metric === metric && (!best || t.lease.remaining() < best.remaining())) best = t.lease;
    return best;
  }
}

export interface Refusal {
  refused: true;
  spec: LimitSpec;
  lease: Lease;
  /** Milliseconds until the window starts over; null when it never does (a total budget). */
  retryAfterMs: number | null;
}

export interface QuotaManagerOptions {
  /** Renew held units this often (well inside the control plane's lease TTL). */
  renewEveryMs?: number;
  /** Give held units back after this long unused. */
  idleReleaseMs?: number;
  /** After a short grant, refuse locally for this long before asking again. */
  refuseCacheMs?: number;
  /** Share of the capacity fetched ahead of demand while the fleet is far from the limit. */
  prefetchFraction?: number;
}

const EMPTY = new Reservation([]);

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
  private activeGateways = 1;
  private degradedSinceMs: number | null = null;
  private readonly renewEveryMs: number;
  private readonly idleReleaseMs: number;
  private readonly refuseCacheMs: number;
  private readonly prefetchFraction: number;
  /** Loads consumed units persisted before a restart (window counters only). */
  loadConsumed: ((counter: string, window: string) => number) | null = null;
  onDegraded: ((degraded: boolean) => void) | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
    options: QuotaManagerOptions = {},
  ) {
    this.renewEveryMs = options.renewEveryMs ?? 10_000;
    this.idleReleaseMs = options.idleReleaseMs ?? 10_000;
    this.refuseCacheMs = options.refuseCacheMs ?? 100;
    this.prefetchFraction = options.prefetchFraction ?? 0.02;
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

  private lease(spec: LimitSpec, nowMs: number): Lease {
    const { window, endsAtMs } = windowOf(spec.period, nowMs);
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
        // Consumed before a restart: stated again in the first Acquire, so the fleet keeps counting it.
        l.fleetUsed = l.consumed;
      }
      this.leases.set(id, l);
    }
    l.capacity = spec.capacity;
    this.leaseOfSpec.set(spec, l);
    return l;
  }

  private needOf(metric: Metric, needs: Needs): number {
    switch (metric) {
      case "rpm":
      case "concurrency":
        return 1;
      case "tpm":
      case "tpd":
        return needs.tokens;
      case "budget":
        return needs.costMicroUsd;
    }
  }

  /**
   * Reserves what a request needs from every limit, or says which refused.
   * Synchronous (memory only) when the held units suffice.
   */
  admit(specs: readonly LimitSpec[], needs: Needs): Reservation | Refusal | Promise<Reservation | Refusal> {
    if (specs.length === 0) return EMPTY;
    const now = this.clock.now();
    const entries: Taken[] = specs.map((s) => ({ lease: this.lease(s, now), metric: s.metric, amount: this.needOf(s.metric, needs) }));
    if (this.tryTake(entries, now)) return new Reservation(entries);
    // A counter the fleet just said is spent: refuse without asking again.
    for (const e of entries) {
      if (e.lease.held < e.amount && e.lease.shortAtMs >= 0 && now - e.lease.shortAtMs < this.refuseCacheMs) return this.refusal(e.lease, now);
      // More than the whole capacity can never fit.
      if (e.amount > e.lease.capacity) return this.refusal(e.lease, now);
    }
    return this.admitSlow(entries);
  }

  private tryTake(entries: Taken[], now: number): boolean {
    for (const e of entries) if (e.amount > 0 && e.lease.held < e.amount) return false;
    for (const e of entries) {
      e.lease.held -= e.amount;
      e.lease.consumed += e.amount;
      e.lease.lastUseMs = now;
      e.lease.dirty = true;
    }
    return true;
  }

  private async admitSlow(entries: Taken[]): Promise<Reservation | Refusal> {
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
      if (this.tryTake(entries, now)) return new Reservation(entries);
      const short = entries.find((e) => e.amount > 0 && e.lease.held < e.amount && e.lease.shortAtMs >= askedAt);
      if (short) return this.refusal(short.lease, now);
      // Requests that waited alongside took the grant first: ask again.
    }
    const e = entries.find((x) => x.amount > 0 && x.lease.held < x.amount)!;
    return this.refusal(e.lease, this.clock.now());
  }

  private refusal(lease: Lease, now: number): Refusal {
    const retryAfterMs = lease.spec.kind === CounterKind.GAUGE ? 1000 : lease.endsAtMs > 0 ? Math.max(0, lease.endsAtMs - now) : null;
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
    for (const t of r.taken) {
      let real: number | null;
      switch (t.metric) {
        case "rpm":
          continue;
        case "concurrency":
          real = 0;
          break;
        case "tpm":
        case "tpd":
          real = actual.tokens;
          break;
        case "budget":
          real = actual.costMicroUsd;
          break;
      }
      if (real === null) continue;
      const delta = Math.round(real) - t.amount;
      t.lease.consumed += delta;
      t.lease.held -= delta;
      t.lease.dirty = true;
    }
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
    this.queued ??= this.inflight.then(() => {
      this.queued = null;
      return this.acquireSoon();
    });
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
    const batch: Array<{ lease: Lease; consumed: number; want: number }> = [];
    for (const l of this.leases.values()) {
      if (l.pending > 0) batch.push({ lease: l, consumed: l.consumed, want: l.pending + this.prefetch(l) });
      else if (l.restate === "renew") batch.push({ lease: l, consumed: l.consumed, want: Math.max(0, l.held) });
      else if (l.restate === "release") batch.push({ lease: l, consumed: l.consumed, want: 0 });
      l.restate = null;
    }
    if (batch.length === 0) return;
    const statements: Statement[] = batch.map((b) => ({
      counter: b.lease.spec.counter,
      window: b.lease.window,
      kind: b.lease.spec.kind,
      capacity: b.lease.capacity,
      consumed: Math.max(0, b.consumed),
      wantHeld: b.want,
      windowEndsAtMs: b.lease.endsAtMs,
    }));
    try {
      if (!this.rpc) throw new Error("the quota service is not connected yet");
      const res = await this.rpc.acquire(statements);
      this.activeGateways = Math.max(1, res.activeGateways);
      const byId = new Map(res.grants.map((g) => [`${g.counter}|${g.window}`, g]));
      for (const b of batch) {
        const g = byId.get(b.lease.id);
        if (!g) continue;
        // Units used or given back locally since the statement left are already in consumed.
        b.lease.held = b.consumed + g.held - b.lease.consumed;
        b.lease.fleetUsed = g.fleetUsed;
        b.lease.lastStatementMs = now;
        if (g.held < b.want) b.lease.shortAtMs = this.clock.now();
      }
      if (this.degradedSinceMs !== null) {
        this.logger.info({ degradedForMs: now - this.degradedSinceMs }, "quota service reachable again: fleet-wide leases resumed");
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
      // An even share of each counter among the gateways last seen active.
      for (const b of batch) {
        const share = Math.floor(b.lease.capacity / this.activeGateways);
        const allowed = Math.max(0, share - b.lease.consumed);
        b.lease.held = Math.max(b.lease.held, allowed);
        if (b.lease.held < b.want) b.lease.shortAtMs = this.clock.now();
      }
    }
  }

  /**
   * Periodic upkeep: forget ended windows, renew held units in use, give back
   * idle ones, so other gateways can have them.
   */
  maintain(): Promise<void> {
    const now = this.clock.now();
    let any = false;
    for (const [id, l] of this.leases) {
      if (l.endsAtMs > 0 && now >= l.endsAtMs + 5_000) {
        l.dropped = true;
        this.leases.delete(id);
        continue;
      }
      const holding = l.held > 0 || (l.spec.kind === CounterKind.GAUGE && l.consumed > 0);
      if (!holding) continue;
      if (l.held > 0 && now - l.lastUseMs >= this.idleReleaseMs) {
        l.restate = "release";
        any = true;
      } else if (now - l.lastStatementMs >= this.renewEveryMs) {
        l.restate = "renew";
        any = true;
      }
    }
    return any ? this.acquireSoon() : Promise.resolve();
  }

  /** Window counters whose consumption changed since the last call (to persist). */
  takeDirty(): Array<{ counter: string; window: string; consumed: number; endsAtMs: number }> {
    const out = [];
    for (const l of this.leases.values()) {
      if (!l.dirty) continue;
      l.dirty = false;
      if (l.spec.kind === CounterKind.WINDOW) out.push({ counter: l.spec.counter, window: l.window, consumed: Math.max(0, l.consumed), endsAtMs: l.endsAtMs });
    }
    return out;
  }

  /** Gives every held unit back (at shutdown). */
  async releaseAll(): Promise<void> {
    for (const l of this.leases.values()) if (l.held > 0 || (l.spec.kind === CounterKind.GAUGE && l.consumed > 0)) l.restate = "release";
    await this.acquireSoon();
  }
}
