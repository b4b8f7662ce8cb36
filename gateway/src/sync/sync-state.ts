import type { Clock } from "../context.js";

export type StateSource = "control_plane" | "cache";

/** What the gateway knows about its sync: served by /readyz and the metrics. */
export class SyncState {
  appliedRevision = 0;
  orgId = "";
  /** Where the current key state came from; null until any state exists. */
  source: StateSource | null = null;
  connected = false;
  /** Latest revision the control plane reported; null before any contact. */
  serverRevision: number | null = null;
  lastContactMs: number | null = null;

  constructor(private readonly clock: Clock) {}

  /** True once a snapshot was applied, now or in an earlier run. */
  get ready(): boolean {
    return this.source !== null;
  }

  lag(): number | null {
    return this.serverRevision === null ? null : Math.max(0, this.serverRevision - this.appliedRevision);
  }

  secondsSinceContact(): number | null {
    return this.lastContactMs === null ? null : Math.max(0, (this.clock.now() - this.lastContactMs) / 1000);
  }

  touch(): void {
    this.lastContactMs = this.clock.now();
  }
}
