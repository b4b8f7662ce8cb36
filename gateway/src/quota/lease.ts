import { CounterKind } from "@tollgate/shared";
import type { LimitSpec, Metric } from "./limits.js";

/** OpenAI's reset format: "1s", "6m0s", "20ms". */
export function formatReset(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${m}m${s % 60}s` : `${m}m${s % 60}s`;
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

  private remainingOf = Number.NaN;
  private remainingString = "";

  /** remaining() as header text, formatted once per value. */
  remainingText(): string {
    const n = this.remaining();
    if (n !== this.remainingOf) {
      this.remainingOf = n;
      this.remainingString = String(n);
    }
    return this.remainingString;
  }

  private resetSecond = Number.NaN;
  private resetString = "";

  /**
   * formatReset(endsAtMs - now) for the rate-limit headers, formatted once per
   * second of what is left (its text only changes by the second); the last
   * second counts milliseconds, formatted each call.
   */
  resetText(now: number): string {
    const ms = this.endsAtMs - now;
    if (ms < 1000) return formatReset(ms);
    const s = Math.ceil(ms / 1000);
    if (s !== this.resetSecond) {
      this.resetSecond = s;
      this.resetString = formatReset(ms);
    }
    return this.resetString;
  }

  private resetInstant: string | undefined;

  /** endsAtMs in RFC 3339 to the second (Anthropic's reset headers), formatted once. */
  resetInstantText(): string {
    this.resetInstant ??= new Date(this.endsAtMs).toISOString().replace(/\.\d{3}Z$/, "Z");
    return this.resetInstant;
  }

  /** What is left for this gateway as far as it knows: the fleet's remainder plus its own unused units. */
  remaining(): number {
    return Math.max(
      0,
      Math.min(
        this.capacity - this.fleetUsed + Math.max(0, this.held) + this.returning,
        this.capacity - this.consumed - this.reserved,
      ),
    );
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

export interface Taken {
  lease: Lease;
  metric: Metric;
  amount: number;
  /** A token or budget reservation of a request without an output cap: its use may exceed it. */
  uncapped?: boolean;
}

/** Units reserved for one request, settled once it ends. */
export class Reservation {
  settled = false;
  constructor(readonly taken: Taken[]) {}

  /** The lease of a metric (the tightest when several apply), for rate-limit headers. */
  tightest(metric: Metric): Lease | null {
    let best: Lease | null = null;
    for (const t of this.taken)
      if (t.metric === metric && (!best || t.lease.remaining() < best.remaining())) best = t.lease;
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

/** Window counters to persist, and how to mark them dirty again if the write fails. */
export interface DirtyWindows {
  rows: Array<{ counter: string; window: string; consumed: number; endsAtMs: number }>;
  undo: () => void;
}

export function takeDirty(leases: Iterable<Lease>): DirtyWindows {
  const rows = [];
  const taken: Lease[] = [];
  for (const l of leases) {
    if (!l.dirty) continue;
    l.dirty = false;
    taken.push(l);
    if (l.spec.kind === CounterKind.WINDOW)
      rows.push({ counter: l.spec.counter, window: l.window, consumed: Math.max(0, l.consumed), endsAtMs: l.endsAtMs });
  }
  return {
    rows,
    undo: () => {
      for (const l of taken) l.dirty = true;
    },
  };
}
