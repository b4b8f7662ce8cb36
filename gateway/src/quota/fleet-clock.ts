import type { Logger } from "@tollgate/shared";
import type { Clock } from "../clock.js";

/** Where the offset in use comes from. */
export type OffsetSource = "none" | "persisted" | "settings" | "acquire";

interface Sample {
  offsetMs: number;
  /** Round trip minus the control plane's own time between its two stamps. */
  delayMs: number;
  /** Local time of the sample (to age it out). */
  atMs: number;
}

export interface FleetClockOptions {
  /** Samples older than this are forgotten (the best one must be recent: clocks drift). */
  windowMs?: number;
  maxSamples?: number;
  /** An offset beyond this is logged (once) as a clock to fix. */
  warnAboveMs?: number;
  /** onOffset is told of changes at least this large (persisting every jitter is pointless). */
  reportStepMs?: number;
  /** Told when the offset in use changes by reportStepMs or more (persist it, export it). */
  onOffset?: (offsetMs: number) => void;
}

/**
 * The fleet's time: this gateway's clock corrected by its offset from the
 * control plane's, which owns the quota windows. The offset is measured
 * NTP-style on every Acquire; of the recent samples, the one with the
 * shortest round trip wins (a slow call's midpoint can be off by half of it).
 * Reading it costs one addition: no syscall beyond the local clock's.
 */
export class FleetClock implements Clock {
  private offset = 0;
  private from: OffsetSource = "none";
  private samples: Sample[] = [];
  private reported = 0;
  private warned = false;
  private readonly windowMs: number;
  private readonly maxSamples: number;
  private readonly warnAboveMs: number;
  private readonly reportStepMs: number;
  private readonly onOffset: ((offsetMs: number) => void) | undefined;

  constructor(
    private readonly local: Clock,
    private readonly logger: Logger,
    options: FleetClockOptions = {},
  ) {
    this.windowMs = options.windowMs ?? 300_000;
    this.maxSamples = options.maxSamples ?? 32;
    this.warnAboveMs = options.warnAboveMs ?? 2_000;
    this.reportStepMs = options.reportStepMs ?? 20;
    this.onOffset = options.onOffset;
  }

  now(): number {
    return this.local.now() + this.offset;
  }

  /** Fleet time at a moment of the local clock. */
  at(localMs: number): number {
    return localMs + this.offset;
  }

  /** Milliseconds to add to the local clock. */
  get offsetMs(): number {
    return this.offset;
  }

  get source(): OffsetSource {
    return this.from;
  }

  /** The offset last measured before a restart: used until this process measures one. */
  restore(offsetMs: number): void {
    if (this.from !== "none" || !Number.isFinite(offsetMs)) return;
    // Already persisted: not reported again.
    this.use(Math.round(offsetMs), "persisted", null, false);
    this.reported = this.offset;
  }

  /** A one-way stamp (the sync stream's Settings): off by the network delay, so only until a round trip is measured. */
  coarse(serverMs: number, receivedLocalMs: number): void {
    if (this.from === "acquire" || !(serverMs > 0)) return;
    this.use(serverMs - receivedLocalMs, "settings", null);
  }

  /**
   * One Acquire: sent and received on the local clock, the control plane's
   * clock when it took the request and when it answered.
   */
  sample(sentLocalMs: number, serverTookMs: number, serverSentMs: number, receivedLocalMs: number): void {
    if (!(serverTookMs > 0) || serverSentMs < serverTookMs || receivedLocalMs < sentLocalMs) return;
    const offsetMs = (serverTookMs - sentLocalMs + (serverSentMs - receivedLocalMs)) / 2;
    const delayMs = Math.max(0, receivedLocalMs - sentLocalMs - (serverSentMs - serverTookMs));
    const s = this.samples;
    while (s.length > 0 && (s.length >= this.maxSamples || receivedLocalMs - s[0]!.atMs > this.windowMs)) s.shift();
    s.push({ offsetMs, delayMs, atMs: receivedLocalMs });
    let best = s[0]!;
    for (const x of s) if (x.delayMs <= best.delayMs) best = x; // ties: the newer
    this.use(Math.round(best.offsetMs), "acquire", best.delayMs);
  }

  private use(offsetMs: number, from: OffsetSource, delayMs: number | null, report = true): void {
    const changedSource = from !== this.from;
    this.offset = offsetMs;
    this.from = from;
    if (!this.warned && Math.abs(offsetMs) > this.warnAboveMs) {
      this.warned = true;
      this.logger.warn(
        { clockOffsetMs: offsetMs, roundTripMs: delayMs, source: from },
        `this gateway's clock is ${Math.abs(offsetMs / 1000).toFixed(1)} s ${offsetMs > 0 ? "behind" : "ahead of"} the control plane's: quota windows follow the control plane's clock; fix the host's time sync (NTP)`,
      );
    }
    if (report && (changedSource || Math.abs(offsetMs - this.reported) >= this.reportStepMs)) {
      this.reported = offsetMs;
      this.onOffset?.(offsetMs);
    }
  }
}
