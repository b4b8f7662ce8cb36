import { CounterKind } from "@tollgate/shared";
import type { Logger } from "@tollgate/shared";
import type { Clock } from "../clock.js";
import { FleetClock } from "./fleet-clock.js";
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
  acquire(statements: Statement[]): Promise<{
    grants: Grant[];
    activeGateways: number;
    /** The control plane's clock when it took the request and when it answered (ms since the epoch). */
    serverTime?: { tookMs: number; sentMs: number };
  }>;
}

/**
 * This gateway's share of one fleet-wide counter window: `consumed` (settled
 * use, only grows within a window), `reserved` (taken by requests in flight)
 * and `held` (free units). Local operations move units between them and never
 * change their sum; only a grant from the control plane does. `held` may go
 * below zero when a request used more than it reserved: a debt the next grant
 * pays first. A gauge (concurrency) has no consumed: its units in use are `reserved`.
 */
export class Lease {
  consumed = 0;
  reserved = 0;
  held = 0;
  /** consumed as last stated to the control plane. */
  statedConsumed = 0;
  /** The whole fleet's consumed + held at the last grant. */
  fleetUsed = 0;
  /** Units that waiting requests need (the next Acquire asks for them). */
  pending = 0;
  lastUseMs = 0;
  lastStatementMs = 0;
  /** The last grant was smaller than asked: the fleet has no more right now. */
  shortAtMs = -1;
  /** Units reserved by uncapped requests in flight against this token or budget counter (see QuotaManager.admit). */
  uncappedReserved = 0;
  /** Units given back in an Acquire still in flight: fleetUsed counts them until its answer. */
  returning = 0;
  /** Set by maintenance: state this lease in the next Acquire (renewal or release). */
  restate: "renew" | "release" | "trim" | null = null;
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

  private capacityString = "";
  private capacityOfString = Number.NaN;

  /** The capacity as header text, formatted once per value. */
  capacityText(): string {
    if (this.capacityOfString !== this.capacity) {
      this.capacityOfString = this.capacity;
      this.capacityString = String(this.capacity);
    }
    return this.capacityString;
  }

  /** What is left for this gateway as far as it knows: the fleet's remainder plus its own unused units. */
  remaining(): number {
    return Math.max(0, Math.min(this.capacity - this.fleetUsed + Math.max(0, this.held) + this.returning, this.capacity - this.consumed - this.reserved));
  }
}

export interface Needs {
  /** Estimated tokens (prompt + maximum output). */
  tokens: number;
  /** Estimated cost in micro-USD. */
  costMicroUsd: number;
  /**
   * False when the request set no output cap, so the estimate assumed a
   * default: then a token or budget limit reserves at most what is left of it
   * (a small limit still admits requests while any is left, settled to the real use).
   */
  outputCapped?: boolean;
}

interface Taken {
  lease: Lease;
  metric: Metric;
  amount: number;
  /** A token or budget reservation of a request without an output cap: its use may exceed it. */
  uncapped?: boolean;
}

/** One Acquire's statements: per lease, what it states and asks for, and what it gave back. */
type Batch = Array<{ lease: Lease; returned: number; consumed: number; want: number; need: number }>;

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
  /** Not spent: a request without an output cap waits its turn near the limit (retry shortly). */
  throttled?: true;
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
      if (e.lease.held < e.amount && e.lease.shortAtMs >= 0 && now - e.lease.shortAtMs < this.refuseCacheMs) return this.refusal(e.lease, now);
      // More than the whole capacity can never fit.
      if (e.amount > e.lease.capacity) return this.refusal(e.lease, now);
    }
    return this.admitSlow(entries, needs);
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
      const short = moved ? undefined : entries.find((e) => e.amount > 0 && e.lease.held < e.amount && e.lease.shortAtMs >= askedAt);
      if (short) return this.refusal(short.lease, now);
      // Requests that waited alongside took the grant first: ask again.
    }
    const e = entries.find((x) => x.amount > 0 && x.lease.held < x.amount)!;
    return this.refusal(e.lease, this.clock.now());
  }

  private refusal(lease: Lease, now: number): Refusal {
    const retryAfterMs = lease.spec.kind === CounterKind.GAUGE ? 1000 : lease.endsAtMs > 0 ? Math.max(0, lease.endsAtMs - this.time.at(now)) : null;
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
    // need: the least that serves the waiting requests (short of it, they are refused); want adds prefetch.
    const batch: Batch = [];
    for (const l of this.leases.values()) {
      let wantFree: number;
      if (l.pending > 0) wantFree = l.pending + this.prefetch(l);
      else if (l.restate === "renew") wantFree = Math.max(0, l.held);
      else if (l.restate === "release") wantFree = 0;
      else if (l.restate === "trim") wantFree = Math.min(Math.max(0, l.held), this.prefetch(l));
      else continue;
      l.restate = null;
      // Never ask for less than is in use here: units given back stop being spendable now,
      // before the control plane can hand them to another gateway.
      let returned = 0;
      if (l.pending === 0 && l.held > wantFree) {
        returned = l.held - wantFree;
        l.returning += returned;
        l.held = wantFree;
      }
      batch.push({
        lease: l,
        returned,
        consumed: l.consumed,
        want: l.reserved + Math.max(0, l.held, wantFree),
        need: l.pending > 0 ? l.reserved + Math.max(0, l.held, l.pending) : 0,
      });
    }
    for (let i = 0; i < batch.length; i += MAX_COUNTERS_PER_CALL) await this.send(batch.slice(i, i + MAX_COUNTERS_PER_CALL), now);
  }

  private async send(batch: Batch, now: number): Promise<void> {
    try {
      await this.sendOnce(batch, now);
    } finally {
      for (const b of batch) b.lease.returning -= b.returned;
    }
  }

  private async sendOnce(batch: Batch, now: number): Promise<void> {
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
      const sentAt = this.clock.now();
      const res = await this.rpc.acquire(statements);
      if (res.serverTime) this.time.sample(sentAt, res.serverTime.tookMs, res.serverTime.sentMs, this.clock.now());
      if (res.activeGateways >= this.activeGateways || now - this.activeSeenAtMs > 600_000) {
        const n = Math.max(1, res.activeGateways);
        if (n !== this.activeGateways) this.onActiveGateways?.(n);
        this.activeGateways = n;
        this.activeSeenAtMs = now;
      }
      const byId = new Map(res.grants.map((g) => [`${g.counter}|${g.window}`, g]));
      for (const b of batch) {
        const g = byId.get(b.lease.id);
        if (!g) continue;
        const l = b.lease;
        // The fleet now counts consumed_sent + held for this gateway; what was used or
        // settled here since the statement left is already in consumed and reserved.
        l.held = b.consumed + g.held - l.consumed - l.reserved;
        l.fleetUsed = g.fleetUsed;
        l.statedConsumed = b.consumed;
        l.lastStatementMs = now;
        if (g.held < b.need) l.shortAtMs = this.clock.now();
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
      // An even share of each counter among the gateways last seen active, and never
      // more than the fleet had left at the last grant.
      for (const b of batch) {
        const l = b.lease;
        const share = Math.floor(l.capacity / this.activeGateways) - l.consumed - l.reserved;
        const fleetLeft = l.capacity - l.fleetUsed + Math.max(0, l.held);
        const allowed = Math.max(0, Math.min(share, fleetLeft));
        l.held = Math.max(l.held, allowed);
        if (l.held < b.need - l.reserved) l.shortAtMs = this.clock.now();
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
      if (l.endsAtMs > 0 && this.time.at(now) >= l.endsAtMs + 5_000) {
        l.dropped = true;
        this.leases.delete(id);
        continue;
      }
      const holding = l.held > 0 || l.reserved > 0;
      // Settled use the control plane has not heard of (a debt above all) is stated at once.
      if (l.consumed !== l.statedConsumed) {
        l.restate = "renew";
        any = true;
        continue;
      }
      if (!holding) continue;
      if (l.held > 0 && l.reserved === 0 && now - l.lastUseMs >= this.idleReleaseMs) {
        l.restate = "release";
        any = true;
      } else if (now - l.lastStatementMs >= this.renewEveryMs) {
        l.restate = "renew";
        any = true;
      }
    }
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
  takeDirty(): { rows: Array<{ counter: string; window: string; consumed: number; endsAtMs: number }>; undo: () => void } {
    const rows = [];
    const taken: Lease[] = [];
    for (const l of this.leases.values()) {
      if (!l.dirty) continue;
      l.dirty = false;
      taken.push(l);
      if (l.spec.kind === CounterKind.WINDOW) rows.push({ counter: l.spec.counter, window: l.window, consumed: Math.max(0, l.consumed), endsAtMs: l.endsAtMs });
    }
    return {
      rows,
      undo: () => {
        for (const l of taken) l.dirty = true;
      },
    };
  }

  /** Gives every held unit back (at shutdown). */
  async releaseAll(): Promise<void> {
    for (const l of this.leases.values()) if (l.held > 0 || l.reserved > 0 || l.consumed !== l.statedConsumed) l.restate = "release";
    await this.acquireSoon();
  }
}
