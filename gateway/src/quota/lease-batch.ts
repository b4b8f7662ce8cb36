import type { Lease } from "./lease.js";
import type { Grant, Statement } from "./quota-rpc.js";

/** One Acquire's statements: per lease, what it states and asks for, and what it gave back. */
export type Batch = Array<{ lease: Lease; returned: number; consumed: number; want: number; need: number }>;

/**
 * What the next Acquire states and asks for, lease by lease: those with
 * waiting requests or marked for restatement by upkeep. Units given back stop
 * being spendable here at once.
 */
export function planBatch(leases: Iterable<Lease>, prefetch: (l: Lease) => number): Batch {
  // need: the least that serves the waiting requests (short of it, they are refused); want adds prefetch.
  const batch: Batch = [];
  for (const l of leases) {
    let wantFree: number;
    if (l.pending > 0) wantFree = l.pending + prefetch(l);
    else if (l.restate === "renew") wantFree = Math.max(0, l.held);
    else if (l.restate === "release") wantFree = 0;
    else if (l.restate === "trim") wantFree = Math.min(Math.max(0, l.held), prefetch(l));
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
  return batch;
}

export function statementsOf(batch: Batch): Statement[] {
  return batch.map((b) => ({
    counter: b.lease.spec.counter,
    window: b.lease.window,
    kind: b.lease.spec.kind,
    capacity: b.lease.capacity,
    consumed: Math.max(0, b.consumed),
    wantHeld: b.want,
    windowEndsAtMs: b.lease.endsAtMs,
  }));
}

/** The control plane's answer: each lease holds what it was granted; `now` is when the batch was planned. */
export function applyGrants(batch: Batch, grants: readonly Grant[], now: number, clock: () => number): void {
  const byId = new Map(grants.map((g) => [`${g.counter}|${g.window}`, g]));
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
    if (g.held < b.need) l.shortAtMs = clock();
  }
}

/**
 * No answer: an even share of each counter among the gateways last seen
 * active, and never more than the fleet had left at the last grant.
 */
export function applyFallbackShare(batch: Batch, activeGateways: number, clock: () => number): void {
  for (const b of batch) {
    const l = b.lease;
    const share = Math.floor(l.capacity / activeGateways) - l.consumed - l.reserved;
    const fleetLeft = l.capacity - l.fleetUsed + Math.max(0, l.held);
    const allowed = Math.max(0, Math.min(share, fleetLeft));
    l.held = Math.max(l.held, allowed);
    if (l.held < b.need - l.reserved) l.shortAtMs = clock();
  }
}
