import type { Clock } from "../clock.js";

export type StateSource = "control_plane" | "cache";

/** Why /readyz says 503. */
export type NotReadyReason = "no_snapshot" | "stale";

export interface SyncStateOptions {
  /** MAX_STALENESS in ms; null: never fail closed. */
  maxStalenessMs?: number | null;
  /** Called when the gateway starts or stops failing closed for staleness. */
  onStaleChange?: (stale: boolean, sinceContactMs: number) => void;
}

/** What the gateway knows about its sync: served by /readyz, the metrics and the hot path. */
export class SyncState {
  appliedRevision = 0;
  orgId = "";
  /**
   * The cache was written by an older release that dropped fields now
   * enforced: subscribe for a full snapshot even though a revision is cached.
   */
  resyncRequired = false;
  /** Where the current key state came from; null until any state exists. */
  source: StateSource | null = null;
  connected = false;
  /**
   * Since connecting, the stream delivered where the control plane stands (a
   * snapshot, a change batch or a heartbeat): until then keys committed while
   * this gateway was away may still be on their way.
   */
  caughtUp = false;
  /** Latest revision the control plane reported; null before any contact. */
  serverRevision: number | null = null;
  /**
   * Last contact with the control plane (a stream event or a successful
   * acknowledgement), possibly from an earlier run (persisted in SQLite); null
   * when there never was any.
   */
  lastContactMs: number | null = null;
  readonly maxStalenessMs: number | null;
  /** Process start: the staleness reference when no contact is known at all. */
  private readonly startedAtMs: number;
  private staleNow = false;
  private readonly onStaleChange: ((stale: boolean, sinceContactMs: number) => void) | undefined;

  constructor(
    private readonly clock: Clock,
    options: SyncStateOptions = {},
  ) {
    this.maxStalenessMs = options.maxStalenessMs ?? null;
    this.onStaleChange = options.onStaleChange;
    this.startedAtMs = clock.now();
  }

  /** True once a snapshot was applied, now or in an earlier run. */
  get ready(): boolean {
    return this.source !== null;
  }

  lag(): number | null {
    return this.serverRevision === null ? null : Math.max(0, this.serverRevision - this.appliedRevision);
  }

  /**
   * True while a key the control plane already committed may be missing here:
   * disconnected, not caught up since connecting, or behind the revision the
   * control plane last reported. An unknown key then is no evidence of guessing.
   */
  mayMissKeys(): boolean {
    return (
      !this.connected || !this.caughtUp || this.serverRevision === null || this.serverRevision > this.appliedRevision
    );
  }

  secondsSinceContact(): number | null {
    return this.lastContactMs === null ? null : Math.max(0, (this.clock.now() - this.lastContactMs) / 1000);
  }

  touch(): void {
    this.lastContactMs = this.clock.now();
    if (this.staleNow) this.staleCheck();
  }

  /**
   * Milliseconds since the last contact when that exceeds MAX_STALENESS (the
   * gateway then fails closed), else null. Memory only: the hot path calls it.
   */
  staleForMs(): number | null {
    if (this.maxStalenessMs === null) return null;
    return this.staleCheck();
  }

  /** Why /readyz is 503, or null when it is 200. */
  notReadyReason(): NotReadyReason | null {
    if (!this.ready) return "no_snapshot";
    return this.staleForMs() === null ? null : "stale";
  }

  private staleCheck(): number | null {
    const max = this.maxStalenessMs;
    if (max === null) return null;
    const since = Math.max(0, this.clock.now() - (this.lastContactMs ?? this.startedAtMs));
    const stale = since > max;
    if (stale !== this.staleNow) {
      this.staleNow = stale;
      this.onStaleChange?.(stale, since);
    }
    return stale ? since : null;
  }
}

/** `95s` → "1m35s"; for messages, not for parsing. */
export function formatDuration(ms: number): string {
  let s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return h > 0 ? `${h}h${m}m${s}s` : `${m}m${s}s`;
}
