import { ConnectError, type Client } from "@connectrpc/connect";
import type { KeySyncService, Logger } from "@tollgate/shared";
import type { GatewayMetrics } from "../metrics.js";
import { syncTrace } from "@tollgate/shared";

interface AckItem {
  revision: number;
  error: string;
  heartbeat: boolean;
}

export interface AcknowledgementsOptions {
  keySync: Client<typeof KeySyncService>;
  gatewayId: string;
  logger: Logger;
  metrics: Pick<GatewayMetrics, "heartbeat">;
  /** Aborted when the gateway stops: nothing more is sent. */
  stopped: AbortSignal;
  /** SYNC_HEARTBEAT_INTERVAL. */
  heartbeatIntervalMs: number;
  /** The revision a heartbeat acknowledges (the applied one). */
  appliedRevision: () => number;
  /** An acknowledgement went through: the control plane is there. */
  onContact: () => void;
}

/**
 * Acknowledges applied revisions (and failures to apply) to the control
 * plane, and heartbeats while connected. Fire and forget: the stream never
 * waits on an acknowledgement.
 */
export class Acknowledgements {
  /** One Acknowledge call at a time; what waits is coalesced (see acknowledge). */
  private inFlight = false;
  private readonly queue: AckItem[] = [];
  private failing = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: AcknowledgementsOptions) {}

  /**
   * At most one Acknowledge call is in flight; while it is, a newer success
   * supersedes a waiting one (only the latest applied revision matters),
   * while error reports are kept.
   */
  acknowledge(revision: number, error = "", heartbeat = false): void {
    const last = this.queue.at(-1);
    const item = { revision, error, heartbeat };
    if (last !== undefined && last.error === "") this.queue[this.queue.length - 1] = item;
    else this.queue.push(item);
    if (!this.inFlight) void this.pump();
  }

  /**
   * Liveness report: every SYNC_HEARTBEAT_INTERVAL while connected, the
   * applied revision is acknowledged even without changes. Skipped while an
   * acknowledgement is still in flight (that one counts as well).
   */
  startHeartbeats(): void {
    this.stopHeartbeats();
    this.heartbeatTimer = setInterval(() => {
      if (this.inFlight || this.queue.length > 0) {
        this.options.metrics.heartbeat("skipped");
        return;
      }
      this.acknowledge(this.options.appliedRevision(), "", true);
    }, this.options.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  stopHeartbeats(): void {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private async pump(): Promise<void> {
    this.inFlight = true;
    try {
      for (let item = this.queue.shift(); item !== undefined; item = this.queue.shift()) {
        if (this.options.stopped.aborted) break;
        await this.send(item);
      }
    } finally {
      this.inFlight = false;
      this.queue.length = 0;
    }
  }

  private async send(item: AckItem): Promise<void> {
    const { keySync, gatewayId, logger, metrics, stopped } = this.options;
    try {
      if (!item.heartbeat) syncTrace("ack_sent", "", item.revision, gatewayId);
      await keySync.acknowledge(
        { gatewayId, revision: BigInt(item.revision), error: item.error },
        { signal: AbortSignal.any([stopped, AbortSignal.timeout(10_000)]) },
      );
      if (!item.heartbeat) syncTrace("ack_answered", "", item.revision, gatewayId);
      this.options.onContact();
      if (item.heartbeat) metrics.heartbeat("ok");
      if (this.failing) {
        this.failing = false;
        logger.info({ revision: item.revision }, "acknowledgements to the control plane work again");
      }
    } catch (err) {
      if (stopped.aborted) return;
      if (item.heartbeat) metrics.heartbeat("error");
      // One warning per streak: a heartbeat every few seconds must not flood the log.
      const level = this.failing ? "debug" : "warn";
      this.failing = true;
      logger[level](
        { revision: item.revision, heartbeat: item.heartbeat, err: ConnectError.from(err).message },
        "could not acknowledge revision to the control plane",
      );
    }
  }
}
