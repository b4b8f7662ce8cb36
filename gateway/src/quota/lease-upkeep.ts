import type { FleetClock } from "./fleet-clock.js";
import type { Lease } from "./lease.js";

export interface UpkeepTimings {
  /** Give held units back after this long unused. */
  idleReleaseMs: number;
  /** Renew held units this often. */
  renewEveryMs: number;
}

/**
 * Marks what the periodic upkeep must state to the control plane: ended
 * windows are forgotten (dropped from `leases`), unstated use and units held
 * long are renewed, idle ones released so other gateways can have them.
 * Returns whether any lease now needs an Acquire. `now` is on the local clock.
 */
export function planUpkeep(
  leases: Map<string, Lease>,
  now: number,
  time: FleetClock,
  { idleReleaseMs, renewEveryMs }: UpkeepTimings,
): boolean {
  let any = false;
  for (const [id, l] of leases) {
    if (l.endsAtMs > 0 && time.at(now) >= l.endsAtMs + 5_000) {
      l.dropped = true;
      leases.delete(id);
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
    if (l.held > 0 && l.reserved === 0 && now - l.lastUseMs >= idleReleaseMs) {
      l.restate = "release";
      any = true;
    } else if (now - l.lastStatementMs >= renewEveryMs) {
      l.restate = "renew";
      any = true;
    }
  }
  return any;
}
