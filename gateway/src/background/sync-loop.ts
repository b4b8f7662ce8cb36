import { setTimeout as sleep } from "node:timers/promises";
import { ConnectError } from "@connectrpc/connect";
import { SnapshotReason, TOLLGATE_VERSION, type Logger, type SubscribeResponse, syncTrace } from "@tollgate/shared";
import type { Clock } from "../clock.js";
import type { SnapshotBuilder } from "../db/key-cache.js";
import type { GatewayMetrics } from "../metrics.js";
import { planChangeBatch } from "./change-order.js";
import { Acknowledgements } from "./acknowledgements.js";
import { fullJitterDelayMs } from "./backoff.js";
import type { ControlPlaneConnection } from "./control-plane-connection.js";
import type { SyncReceiver } from "./sync-receiver.js";
import type { SyncState } from "./sync-state.js";
import { logStreamEnd, type StreamOutcome } from "./stream-outcome.js";

export interface SyncClientOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** HTTP/2 ping interval: detects a dead connection when the stream is silent (see ControlPlaneConnection). */
  pingIntervalMs?: number;
  /** How often the last contact time is written to SQLite at most (default 30 s). */
  persistContactEveryMs?: number;
}

/** Where the last contact time is kept across restarts (MAX_STALENESS counts from it). */
export interface LastContactStore {
  /** False once the cache is closed: nothing more is written. */
  readonly open: boolean;
  /** Resolves false when the write failed. */
  save(ms: number): Promise<boolean>;
}

/** What the loop is given; it pushes what the stream delivers to `receiver`. */
export interface SyncLoopDeps {
  connection: ControlPlaneConnection;
  receiver: SyncReceiver;
  state: SyncState;
  metrics: Pick<GatewayMetrics, "syncApplied" | "heartbeat" | "syncState">;
  logger: Logger;
  clock: Clock;
  lastContact: LastContactStore;
  gatewayId: string;
  gatewayName: string;
  /** CONTROL_PLANE_URL, for the logs. */
  controlPlaneUrl: string;
  heartbeatIntervalMs: number;
  /** Keys served now, for the logs and metrics. */
  keyCount: () => number;
}

interface PendingSnapshot {
  /** Keys the control plane announced in snapshotBegin. */
  keyCount: number;
  /** What arrived so far, checked and compiled chunk by chunk; applied only at snapshotEnd. */
  builder: SnapshotBuilder;
}

/** Tells the stream loop to drop the subscription and subscribe again from the applied revision. */
class Resubscribe extends Error {}

/**
 * Keeps one Subscribe stream to the control plane open, applies what it
 * delivers and acknowledges it. Never throws: any failure ends in a
 * reconnection with full-jitter backoff, while the gateway keeps serving from
 * what it has.
 */
export class SyncClient {
  private readonly stopper = new AbortController();
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly persistContactEveryMs: number;
  private readonly acks: Acknowledgements;
  private loop: Promise<void> | undefined;
  private contactPersistedAtMs = 0;

  constructor(
    private readonly deps: SyncLoopDeps,
    options: SyncClientOptions = {},
  ) {
    this.baseDelayMs = options.baseDelayMs ?? 200;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
    this.persistContactEveryMs = options.persistContactEveryMs ?? 30_000;
    this.acks = new Acknowledgements({
      keySync: deps.connection.keySync,
      gatewayId: deps.gatewayId,
      logger: deps.logger,
      metrics: deps.metrics,
      stopped: this.stopper.signal,
      heartbeatIntervalMs: deps.heartbeatIntervalMs,
      appliedRevision: () => deps.state.appliedRevision,
      onContact: () => this.contact(),
    });
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    this.acks.stopHeartbeats();
    this.deps.connection.abort();
    await this.loop;
    this.persistContact(true);
  }

  private async run(): Promise<void> {
    const { logger, controlPlaneUrl } = this.deps;
    let attempt = 0;
    while (!this.stopper.signal.aborted) {
      const outcome = await this.subscribeOnce();
      if (outcome.kind === "stopped" || this.stopper.signal.aborted) break;
      if (outcome.healthy) attempt = 0;
      const retryInMs = fullJitterDelayMs(attempt++, this.baseDelayMs, this.maxDelayMs);
      const fields = { revision: this.deps.state.appliedRevision, retryInMs };
      logStreamEnd(outcome, {
        logger,
        controlPlaneUrl,
        fields,
        ready: this.deps.state.ready,
        keyCount: () => this.deps.keyCount(),
      });
      try {
        await sleep(retryInMs, undefined, { signal: this.stopper.signal });
      } catch {
        break; // stopped while waiting
      }
    }
  }

  private async subscribeOnce(): Promise<StreamOutcome> {
    const { state, logger, gatewayId, gatewayName, controlPlaneUrl } = this.deps;
    const streamAbort = new AbortController();
    const onStop = () => streamAbort.abort();
    this.stopper.signal.addEventListener("abort", onStop, { once: true });
    let healthy = false;
    let pending: PendingSnapshot | null = null;
    const markConnected = () => {
      if (state.connected) return;
      state.connected = true;
      state.caughtUp = false;
      this.acks.startHeartbeats();
      this.publish();
      logger.info(
        { url: controlPlaneUrl, revision: state.appliedRevision, orgId: state.orgId || undefined },
        "connected to control plane",
      );
    };
    try {
      const stream = this.deps.connection.keySync.subscribe(
        {
          gatewayId,
          gatewayName,
          version: TOLLGATE_VERSION,
          // 0 asks for a full snapshot: the cache may lack fields an older release dropped.
          lastRevision: BigInt(state.resyncRequired ? 0 : state.appliedRevision),
          orgId: state.orgId,
        },
        // Connected once the first event arrives (the control plane opens every stream with its
        // settings): response headers alone may still end in a refusal (a rejected token).
        { signal: streamAbort.signal },
      );
      for await (const msg of stream) {
        markConnected();
        this.contact();
        pending = this.handle(msg, pending);
        healthy = true;
        this.publish();
      }
      return this.stopper.signal.aborted ? { kind: "stopped" } : { kind: "ended", healthy };
    } catch (err) {
      if (this.stopper.signal.aborted) return { kind: "stopped" };
      if (err instanceof Resubscribe) return { kind: "resubscribe", healthy };
      return { kind: "failed", healthy, error: ConnectError.from(err) };
    } finally {
      streamAbort.abort();
      this.acks.stopHeartbeats();
      this.acks.closeStream();
      this.stopper.signal.removeEventListener("abort", onStop);
      if (state.connected) {
        state.connected = false;
        state.caughtUp = false;
        this.publish();
        logger.info({ revision: state.appliedRevision }, "disconnected from control plane");
      }
    }
  }

  /** Handles one stream event; returns the snapshot being assembled, if any. */
  private handle(msg: SubscribeResponse, pending: PendingSnapshot | null): PendingSnapshot | null {
    const { state, logger } = this.deps;
    const ev = msg.event;
    switch (ev.case) {
      case "snapshotBegin": {
        if (pending)
          logger.warn(
            { revision: pending.builder.head.revision },
            "snapshot restarted before it ended; discarding the partial one",
          );
        return {
          keyCount: ev.value.keyCount,
          builder: this.deps.receiver.beginSnapshot({
            revision: Number(ev.value.revision),
            reason: ev.value.reason,
            orgId: ev.value.orgId,
          }),
        };
      }
      case "snapshotChunk": {
        if (!pending) this.protocolError("snapshot chunk without snapshot begin");
        try {
          pending.builder.add(ev.value);
        } catch (err) {
          this.applyFailed("snapshot", (err as Error).message, err);
        }
        return pending;
      }
      case "snapshotEnd": {
        if (!pending) this.protocolError("snapshot end without snapshot begin");
        const revision = Number(ev.value.revision);
        const { head } = pending.builder;
        if (revision !== head.revision) {
          this.applyFailed("snapshot", `snapshot ended at revision ${revision} but began at ${head.revision}`);
        }
        if (pending.builder.keyCount !== pending.keyCount) {
          this.applyFailed(
            "snapshot",
            `snapshot announced ${pending.keyCount} keys but carried ${pending.builder.keyCount}`,
          );
        }
        this.applySnapshot(pending.builder);
        state.caughtUp = true;
        return null;
      }
      case "changeBatch": {
        if (pending) this.protocolError("change batch inside a snapshot");
        syncTrace("receive", state.orgId, Number(ev.value.changes.at(-1)?.revision ?? 0), this.deps.gatewayId);
        this.applyBatch(ev.value.changes);
        state.caughtUp = true;
        return null;
      }
      case "settings": {
        this.deps.receiver.applySettings(ev.value);
        // This control plane takes the open stream (its HTTP/2 pings) as liveness:
        // acknowledge revisions only. An older one keeps getting heartbeats.
        if (ev.value.streamLiveness) this.acks.stopHeartbeats();
        if (ev.value.acknowledgeStream) this.acks.openStream();
        return pending;
      }
      case "heartbeat": {
        state.serverRevision = Number(ev.value.revision);
        state.caughtUp = true;
        // The control plane has nothing newer: the cached state is now confirmed.
        if (state.ready && state.serverRevision === state.appliedRevision) state.source = "control_plane";
        return pending;
      }
      default:
        // An event this gateway does not know yet (newer control plane).
        return pending;
    }
  }

  private applySnapshot(snapshot: SnapshotBuilder): void {
    const { state, receiver, metrics, logger } = this.deps;
    const s = snapshot.head;
    let result;
    try {
      result = receiver.commitSnapshot(snapshot);
    } catch (err) {
      this.applyFailed("snapshot", (err as Error).message, err);
    }
    state.appliedRevision = s.revision;
    state.orgId = s.orgId;
    state.resyncRequired = false;
    state.serverRevision = Math.max(state.serverRevision ?? 0, s.revision);
    if (s.reason === SnapshotReason.AHEAD) state.serverRevision = s.revision;
    state.source = "control_plane";
    metrics.syncApplied("snapshot", true);
    logger.info(
      {
        revision: s.revision,
        reason: SnapshotReason[s.reason],
        orgId: s.orgId,
        keys: result.keys,
        added: result.added,
        changed: result.changed,
        removed: result.removed,
        signingKeys: result.signingKeys,
        modelPrices: result.modelPrices,
      },
      "applied key snapshot",
    );
    this.acks.acknowledge(s.revision);
  }

  private applyBatch(changes: Parameters<typeof planChangeBatch>[1]): void {
    const { state, receiver, metrics, logger } = this.deps;
    const plan = planChangeBatch(state.appliedRevision, changes);
    if (plan.kind === "noop") return;
    if (plan.kind === "gap") {
      logger.error(
        { applied: state.appliedRevision, expected: plan.expected, got: plan.got },
        "gap in the key change stream; resubscribing from the applied revision",
      );
      throw new Resubscribe();
    }
    let result;
    try {
      result = receiver.applyChanges(plan.changes);
    } catch (err) {
      this.applyFailed("delta", (err as Error).message, err);
    }
    state.appliedRevision = result.revision;
    state.serverRevision = Math.max(state.serverRevision ?? 0, result.revision);
    if (state.ready) state.source = "control_plane";
    metrics.syncApplied("delta", true);
    logger.debug(
      {
        revision: result.revision,
        upserts: result.upserts,
        deletes: result.deletes,
        signingKeyUpserts: result.signingKeyUpserts,
        modelPriceChanges: result.modelPriceChanges,
      },
      "applied key changes",
    );
    this.acks.acknowledge(result.revision);
  }

  /** The old state stays (the transaction rolled back): report and resubscribe. */
  private applyFailed(kind: "snapshot" | "delta", message: string, err?: unknown): never {
    const { state, metrics, logger } = this.deps;
    metrics.syncApplied(kind, false);
    logger.error(
      { err, kind, revision: state.appliedRevision },
      `could not apply ${kind} (kept the previous state): ${message}`,
    );
    this.acks.acknowledge(state.appliedRevision, message);
    throw new Resubscribe();
  }

  private protocolError(message: string): never {
    this.deps.logger.error(
      { revision: this.deps.state.appliedRevision },
      `sync protocol error: ${message}; resubscribing`,
    );
    throw new Resubscribe();
  }

  /** A stream event or a successful acknowledgement: the control plane is there. */
  private contact(): void {
    this.deps.state.touch();
    this.persistContact(false);
  }

  /**
   * Keeps the last contact time in SQLite, at most every persistContactEveryMs,
   * so that MAX_STALENESS still counts from it after a restart. Off the hot path.
   */
  private persistContact(force: boolean): void {
    const { state, lastContact, clock, logger } = this.deps;
    const last = state.lastContactMs;
    if (last === null || !lastContact.open) return;
    if (!force && clock.now() - this.contactPersistedAtMs < this.persistContactEveryMs) return;
    this.contactPersistedAtMs = clock.now();
    void lastContact.save(last).then((ok) => {
      if (!ok) logger.warn("could not record the last contact time in the local cache");
    });
  }

  private publish(): void {
    const { state: s, metrics, keyCount } = this.deps;
    metrics.syncState({ appliedRevision: s.appliedRevision, keys: keyCount(), connected: s.connected });
  }
}
