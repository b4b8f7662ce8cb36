import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import {
  KeySyncService,
  SnapshotReason,
  TOLLGATE_VERSION,
  type KeyUpsert,
  type SubscribeResponse,
} from "@tollgate/shared";
import type { AppContext } from "../context.js";
import { fullJitterDelayMs } from "./backoff.js";
import { planChangeBatch } from "./key-cache.js";

export interface SyncClientOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** HTTP/2 ping interval: detects a dead connection when the stream is silent. */
  pingIntervalMs?: number;
}

interface PendingSnapshot {
  revision: number;
  reason: SnapshotReason;
  orgId: string;
  keyCount: number;
  keys: KeyUpsert[];
}

/** How one subscription ended. */
type StreamOutcome =
  | { kind: "stopped" }
  | { kind: "ended"; healthy: boolean }
  | { kind: "resubscribe"; healthy: boolean }
  | { kind: "failed"; healthy: boolean; error: ConnectError };

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
  private readonly session: Http2SessionManager;
  private readonly client: Client<typeof KeySyncService>;
  private readonly headers: Record<string, string>;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly ctx: AppContext,
    options: SyncClientOptions = {},
  ) {
    this.baseDelayMs = options.baseDelayMs ?? 200;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
    this.session = new Http2SessionManager(ctx.config.controlPlaneUrl, {
      pingIntervalMs: options.pingIntervalMs ?? 15_000,
      pingTimeoutMs: 10_000,
    });
    this.client = createClient(
      KeySyncService,
      createGrpcTransport({ baseUrl: ctx.config.controlPlaneUrl, sessionManager: this.session }),
    );
    this.headers = { authorization: `Bearer ${ctx.config.gatewayToken}` };
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    this.session.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { logger } = this.ctx;
    let attempt = 0;
    while (!this.stopper.signal.aborted) {
      const outcome = await this.subscribeOnce();
      if (outcome.kind === "stopped" || this.stopper.signal.aborted) break;
      if (outcome.healthy) attempt = 0;
      const retryInMs = fullJitterDelayMs(attempt++, this.baseDelayMs, this.maxDelayMs);
      const fields = { revision: this.ctx.syncState.appliedRevision, retryInMs };
      if (outcome.kind === "failed") {
        const code = outcome.error.code;
        if (code === Code.Unauthenticated || code === Code.PermissionDenied) {
          logger.error(
            { ...fields, code: Code[code], detail: outcome.error.rawMessage },
            `GATEWAY_TOKEN was rejected by the control plane at ${this.ctx.config.controlPlaneUrl}: create a token with POST /internal/gateway-tokens`,
          );
        } else {
          const state = this.ctx.syncState;
          logger.warn(
            { ...fields, code: Code[code], err: outcome.error.message, url: this.ctx.config.controlPlaneUrl },
            state.ready
              ? `sync stream to the control plane failed; serving the ${this.ctx.keyIndex.size} cached keys meanwhile`
              : "sync stream to the control plane failed; not ready until a first snapshot arrives",
          );
        }
      } else if (outcome.kind === "ended") {
        logger.info(fields, "control plane ended the sync stream; reconnecting");
      } else {
        logger.info(fields, "resubscribing to the control plane from the applied revision");
      }
      try {
        await sleep(retryInMs, undefined, { signal: this.stopper.signal });
      } catch {
        break; // stopped while waiting
      }
    }
  }

  private async subscribeOnce(): Promise<StreamOutcome> {
    const { syncState: state, logger, config, gatewayId } = this.ctx;
    const streamAbort = new AbortController();
    const onStop = () => streamAbort.abort();
    this.stopper.signal.addEventListener("abort", onStop, { once: true });
    let healthy = false;
    let pending: PendingSnapshot | null = null;
    const markConnected = () => {
      if (state.connected) return;
      state.connected = true;
      this.publish();
      logger.info(
        { url: config.controlPlaneUrl, revision: state.appliedRevision, orgId: state.orgId || undefined },
        "connected to control plane",
      );
    };
    try {
      const stream = this.client.subscribe(
        {
          gatewayId,
          gatewayName: config.gatewayName,
          version: TOLLGATE_VERSION,
          lastRevision: BigInt(state.appliedRevision),
          orgId: state.orgId,
        },
        { headers: this.headers, signal: streamAbort.signal, onHeader: markConnected },
      );
      for await (const msg of stream) {
        markConnected();
        state.touch();
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
      this.stopper.signal.removeEventListener("abort", onStop);
      if (state.connected) {
        state.connected = false;
        this.publish();
        logger.info({ revision: state.appliedRevision }, "disconnected from control plane");
      }
    }
  }

  /** Handles one stream event; returns the snapshot being assembled, if any. */
  private handle(msg: SubscribeResponse, pending: PendingSnapshot | null): PendingSnapshot | null {
    const { syncState: state, logger } = this.ctx;
    const ev = msg.event;
    switch (ev.case) {
      case "snapshotBegin": {
        if (pending) logger.warn({ revision: pending.revision }, "snapshot restarted before it ended; discarding the partial one");
        return {
          revision: Number(ev.value.revision),
          reason: ev.value.reason,
          orgId: ev.value.orgId,
          keyCount: ev.value.keyCount,
          keys: [],
        };
      }
      case "snapshotChunk": {
        if (!pending) this.protocolError("snapshot chunk without snapshot begin");
        // A loop, not push(...keys): spreading a huge chunk would overflow the stack.
        for (const k of ev.value.keys) pending.keys.push(k);
        return pending;
      }
      case "snapshotEnd": {
        if (!pending) this.protocolError("snapshot end without snapshot begin");
        const revision = Number(ev.value.revision);
        if (revision !== pending.revision) {
          this.applyFailed("snapshot", `snapshot ended at revision ${revision} but began at ${pending.revision}`);
        }
        if (pending.keys.length !== pending.keyCount) {
          this.applyFailed("snapshot", `snapshot announced ${pending.keyCount} keys but carried ${pending.keys.length}`);
        }
        this.applySnapshot(pending);
        return null;
      }
      case "changeBatch": {
        if (pending) this.protocolError("change batch inside a snapshot");
        this.applyBatch(ev.value.changes);
        return null;
      }
      case "heartbeat": {
        state.serverRevision = Number(ev.value.revision);
        // The control plane has nothing newer: the cached state is now confirmed.
        if (state.ready && state.serverRevision === state.appliedRevision) state.source = "control_plane";
        return pending;
      }
      default:
        // An event this gateway does not know yet (newer control plane).
        return pending;
    }
  }

  private applySnapshot(s: PendingSnapshot): void {
    const { syncState: state, keyCache, metrics, logger } = this.ctx;
    let result;
    try {
      result = keyCache.applySnapshot({ revision: s.revision, orgId: s.orgId, reason: s.reason, keys: s.keys });
    } catch (err) {
      this.applyFailed("snapshot", (err as Error).message, err);
    }
    state.appliedRevision = s.revision;
    state.orgId = s.orgId;
    state.serverRevision = Math.max(state.serverRevision ?? 0, s.revision);
    if (s.reason === SnapshotReason.AHEAD) state.serverRevision = s.revision;
    state.source = "control_plane";
    metrics.syncApplied("snapshot", true);
    logger.info(
      { revision: s.revision, reason: SnapshotReason[s.reason], orgId: s.orgId, keys: result.keys, added: result.added, changed: result.changed, removed: result.removed },
      "applied key snapshot",
    );
    this.acknowledge(s.revision);
  }

  private applyBatch(changes: Parameters<typeof planChangeBatch>[1]): void {
    const { syncState: state, keyCache, metrics, logger } = this.ctx;
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
      result = keyCache.applyChanges(plan.changes);
    } catch (err) {
      this.applyFailed("delta", (err as Error).message, err);
    }
    state.appliedRevision = result.revision;
    state.serverRevision = Math.max(state.serverRevision ?? 0, result.revision);
    if (state.ready) state.source = "control_plane";
    metrics.syncApplied("delta", true);
    logger.debug({ revision: result.revision, upserts: result.upserts, deletes: result.deletes }, "applied key changes");
    this.acknowledge(result.revision);
  }

  /** The old state stays (the transaction rolled back): report and resubscribe. */
  private applyFailed(kind: "snapshot" | "delta", message: string, err?: unknown): never {
    const { syncState: state, metrics, logger } = this.ctx;
    metrics.syncApplied(kind, false);
    logger.error({ err, kind, revision: state.appliedRevision }, `could not apply ${kind} (kept the previous state): ${message}`);
    this.acknowledge(state.appliedRevision, message);
    throw new Resubscribe();
  }

  private protocolError(message: string): never {
    this.ctx.logger.error({ revision: this.ctx.syncState.appliedRevision }, `sync protocol error: ${message}; resubscribing`);
    throw new Resubscribe();
  }

  /** Fire and forget: the stream never waits on an acknowledgement. */
  private acknowledge(revision: number, error?: string): void {
    const { logger, gatewayId } = this.ctx;
    this.client
      .acknowledge(
        { gatewayId, revision: BigInt(revision), error: error ?? "" },
        { headers: this.headers, signal: AbortSignal.any([this.stopper.signal, AbortSignal.timeout(10_000)]) },
      )
      .catch((err: unknown) => {
        if (this.stopper.signal.aborted) return;
        logger.warn({ revision, err: ConnectError.from(err).message }, "could not acknowledge revision to the control plane");
      });
  }

  private publish(): void {
    const { syncState: s, metrics, keyIndex } = this.ctx;
    metrics.syncState({ appliedRevision: s.appliedRevision, keys: keyIndex.size, connected: s.connected, lag: s.lag() });
  }
}
