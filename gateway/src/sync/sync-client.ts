import type { SecureClientSessionOptions } from "node:http2";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { QuotaRpc } from "../quota/quota-manager.js";
import type { UsageRpc } from "../quota/usage-outbox.js";
import {
  KeySyncService,
  QuotaService,
  SnapshotReason,
  TOLLGATE_VERSION,
  type KeyUpsert,
  type ModelPrice,
  type SigningKey,
  type SubscribeResponse,
} from "@tollgate/shared";
import type { ControlPlaneTls } from "../config.js";
import type { AppContext } from "../context.js";
import { META } from "../db/meta-repository.js";
import { fullJitterDelayMs } from "./backoff.js";
import { planChangeBatch } from "./key-cache.js";

export interface SyncClientOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** HTTP/2 ping interval: detects a dead connection when the stream is silent. */
  pingIntervalMs?: number;
  /** How often the last contact time is written to SQLite at most (default 30 s). */
  persistContactEveryMs?: number;
}

interface AckItem {
  revision: number;
  error: string;
  heartbeat: boolean;
}

/** Node's TLS options for http2.connect() from the gateway's TLS settings. */
export function tlsSessionOptions(tls: ControlPlaneTls): SecureClientSessionOptions {
  const out: SecureClientSessionOptions = {};
  if (tls.ca !== undefined) out.ca = tls.ca;
  if (tls.cert !== undefined) out.cert = tls.cert;
  if (tls.key !== undefined) out.key = tls.key;
  return out;
}

/** A TLS failure in words an operator can act on: what happened, and which variable to check. */
export interface TlsFailure {
  reason: string;
  fix: string;
  /** The raw error text, for the log's detail field. */
  detail: string;
}

/**
 * Recognizes a TLS failure in a ConnectError (whose message is all that is
 * left of Node's error: the cause chain does not survive the transport).
 */
export function tlsFailure(err: ConnectError): TlsFailure | undefined {
  const detail = err.rawMessage.trim();
  // OpenSSL's "...:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:..." → its reason.
  const openssl = /SSL routines:[^:]*:([^:]+):/.exec(detail)?.[1]?.trim();
  const text = openssl ?? detail;
  if (/alert certificate required/i.test(text)) {
    return {
      reason: "the control plane requires a client certificate",
      fix: "set GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE to a certificate signed by a CA the control plane trusts",
      detail,
    };
  }
  if (/alert (bad certificate|unknown ca|certificate unknown|certificate revoked|certificate expired|unsupported certificate|decrypt error|access denied)/i.test(text)) {
    return {
      reason: `the control plane refused the client certificate (${text})`,
      fix: "check GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE against the client CA the control plane trusts",
      detail,
    };
  }
  if (/self[- ]signed certificate|unable to get (local )?issuer certificate|unable to verify the first certificate|certificate has expired|certificate is not yet valid|certificate signature failure/i.test(text)) {
    return {
      reason: `the control plane's certificate is not trusted (${text})`,
      fix: "set CONTROL_PLANE_CA_FILE to the CA that signed it",
      detail,
    };
  }
  if (/Hostname\/IP does not match|altnames/i.test(text)) {
    return {
      reason: `the control plane's certificate does not name the host in CONTROL_PLANE_URL (${text})`,
      fix: "use the host name the certificate was issued for, or reissue it",
      detail,
    };
  }
  if (/\bssl\b|\btls\b|certificate|handshake|wrong version number|alert/i.test(text)) {
    return {
      reason: text,
      fix: "check CONTROL_PLANE_URL (https:// for a TLS control plane), CONTROL_PLANE_CA_FILE, GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE",
      detail,
    };
  }
  return undefined;
}

interface PendingSnapshot {
  revision: number;
  reason: SnapshotReason;
  orgId: string;
  keyCount: number;
  keys: KeyUpsert[];
  signingKeys: SigningKey[];
  modelPrices: ModelPrice[];
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
  private readonly persistContactEveryMs: number;
  private loop: Promise<void> | undefined;
  /** One Acknowledge call at a time; what waits is coalesced (see acknowledge). */
  private ackInFlight = false;
  private readonly ackQueue: AckItem[] = [];
  private ackFailing = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private contactPersistedAtMs = 0;

  constructor(
    private readonly ctx: AppContext,
    options: SyncClientOptions = {},
  ) {
    this.baseDelayMs = options.baseDelayMs ?? 200;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
    this.persistContactEveryMs = options.persistContactEveryMs ?? 30_000;
    // With a session manager of our own, createGrpcTransport's nodeOptions are
    // ignored: the TLS options (ca, cert, key) go to http2.connect() from here.
    this.session = new Http2SessionManager(
      ctx.config.controlPlaneUrl,
      { pingIntervalMs: options.pingIntervalMs ?? 15_000, pingTimeoutMs: 10_000 },
      tlsSessionOptions(ctx.config.controlPlaneTls),
    );
    this.client = createClient(
      KeySyncService,
      createGrpcTransport({ baseUrl: ctx.config.controlPlaneUrl, sessionManager: this.session }),
    );
    this.headers = { authorization: `Bearer ${ctx.config.gatewayToken}` };
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** QuotaService over the same HTTP/2 connection as the key stream. */
  quotaRpc(): QuotaRpc & UsageRpc {
    const client = createClient(QuotaService, createGrpcTransport({ baseUrl: this.ctx.config.controlPlaneUrl, sessionManager: this.session }));
    const gatewayId = this.ctx.gatewayId;
    const opts = () => ({ headers: this.headers, timeoutMs: 2_000 });
    return {
      acquire: async (statements) => {
        const res = await client.acquire(
          {
            gatewayId,
            counters: statements.map((s) => ({
              counter: s.counter,
              window: s.window,
              kind: s.kind,
              capacity: BigInt(s.capacity),
              consumed: BigInt(s.consumed),
              wantHeld: BigInt(s.wantHeld),
              windowEndsAtMs: BigInt(s.windowEndsAtMs),
            })),
          },
          opts(),
        );
        return {
          activeGateways: res.activeGateways,
          // An older control plane sends no server_time_ms: no sample, the offset in use stays.
          ...(res.serverTime && res.serverTimeMs > 0n
            ? { serverTime: { tookMs: timestampMs(res.serverTime), sentMs: Number(res.serverTimeMs) } }
            : {}),
          grants: res.grants.map((g) => ({ counter: g.counter, window: g.window, held: Number(g.held), fleetUsed: Number(g.fleetUsed) })),
        };
      },
      reportUsage: async (rows) => {
        const res = await client.reportUsage(
          {
            gatewayId,
            reports: rows.map((r) => ({
              seq: BigInt(r.seq),
              records: r.records.map((x) => ({
                keyId: x.keyId,
                userId: x.userId,
                teamId: x.teamId,
                day: x.day,
                requests: BigInt(x.requests),
                inputTokens: BigInt(x.inputTokens),
                outputTokens: BigInt(x.outputTokens),
                costMicroUsd: BigInt(x.costMicroUsd),
                lastUsedAt: timestampFromMs(x.lastUsedAtMs),
              })),
            })),
          },
          opts(),
        );
        return res.acknowledged.map(Number);
      },
    };
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    this.stopHeartbeats();
    this.session.abort();
    await this.loop;
    this.persistContact(true);
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
        const tls = tlsFailure(outcome.error);
        if (code === Code.Unauthenticated || code === Code.PermissionDenied) {
          logger.error(
            { ...fields, code: Code[code], detail: outcome.error.rawMessage },
            `GATEWAY_TOKEN was rejected by the control plane at ${this.ctx.config.controlPlaneUrl}: create a token with POST /internal/gateway-tokens`,
          );
        } else if (tls !== undefined) {
          logger.error(
            { ...fields, code: Code[code], detail: tls.detail, url: this.ctx.config.controlPlaneUrl },
            `TLS with the control plane at ${this.ctx.config.controlPlaneUrl} failed: ${tls.reason}; ${tls.fix}. Retrying.`,
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
      this.startHeartbeats();
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
          // 0 asks for a full snapshot: the cache may lack fields an older release dropped.
          lastRevision: BigInt(state.resyncRequired ? 0 : state.appliedRevision),
          orgId: state.orgId,
        },
        // Connected once the first event arrives (the control plane opens every stream with its
        // settings): response headers alone may still end in a refusal (a rejected token).
        { headers: this.headers, signal: streamAbort.signal },
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
      this.stopHeartbeats();
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
          signingKeys: [],
          modelPrices: [],
        };
      }
      case "snapshotChunk": {
        if (!pending) this.protocolError("snapshot chunk without snapshot begin");
        // A loop, not push(...keys): spreading a huge chunk would overflow the stack.
        for (const k of ev.value.keys) pending.keys.push(k);
        for (const k of ev.value.signingKeys) pending.signingKeys.push(k);
        for (const p of ev.value.modelPrices) pending.modelPrices.push(p);
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
      case "settings": {
        this.ctx.quota.applySettings(ev.value);
        return pending;
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
      result = keyCache.applySnapshot({
        revision: s.revision,
        orgId: s.orgId,
        reason: s.reason,
        keys: s.keys,
        signingKeys: s.signingKeys,
        modelPrices: s.modelPrices,
      });
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

  /**
   * Fire and forget: the stream never waits on an acknowledgement. At most one
   * Acknowledge call is in flight; while it is, a newer success supersedes a
   * waiting one (only the latest applied revision matters), while error
   * reports are kept.
   */
  private acknowledge(revision: number, error = "", heartbeat = false): void {
    const last = this.ackQueue.at(-1);
    const item = { revision, error, heartbeat };
    if (last !== undefined && last.error === "") this.ackQueue[this.ackQueue.length - 1] = item;
    else this.ackQueue.push(item);
    if (!this.ackInFlight) void this.pumpAcks();
  }

  private async pumpAcks(): Promise<void> {
    this.ackInFlight = true;
    try {
      for (let item = this.ackQueue.shift(); item !== undefined; item = this.ackQueue.shift()) {
        if (this.stopper.signal.aborted) break;
        await this.sendAck(item);
      }
    } finally {
      this.ackInFlight = false;
      this.ackQueue.length = 0;
    }
  }

  private async sendAck(item: AckItem): Promise<void> {
    const { logger, gatewayId, metrics } = this.ctx;
    try {
      await this.client.acknowledge(
        { gatewayId, revision: BigInt(item.revision), error: item.error },
        { headers: this.headers, signal: AbortSignal.any([this.stopper.signal, AbortSignal.timeout(10_000)]) },
      );
      this.contact();
      if (item.heartbeat) metrics.heartbeat("ok");
      if (this.ackFailing) {
        this.ackFailing = false;
        logger.info({ revision: item.revision }, "acknowledgements to the control plane work again");
      }
    } catch (err) {
      if (this.stopper.signal.aborted) return;
      if (item.heartbeat) metrics.heartbeat("error");
      // One warning per streak: a heartbeat every few seconds must not flood the log.
      const level = this.ackFailing ? "debug" : "warn";
      this.ackFailing = true;
      logger[level](
        { revision: item.revision, heartbeat: item.heartbeat, err: ConnectError.from(err).message },
        "could not acknowledge revision to the control plane",
      );
    }
  }

  /**
   * Liveness report: every SYNC_HEARTBEAT_INTERVAL while connected, the
   * applied revision is acknowledged even without changes. Skipped while an
   * acknowledgement is still in flight (that one counts as well).
   */
  private startHeartbeats(): void {
    this.stopHeartbeats();
    this.heartbeatTimer = setInterval(() => {
      if (this.ackInFlight || this.ackQueue.length > 0) {
        this.ctx.metrics.heartbeat("skipped");
        return;
      }
      this.acknowledge(this.ctx.syncState.appliedRevision, "", true);
    }, this.ctx.config.syncHeartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeats(): void {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  /** A stream event or a successful acknowledgement: the control plane is there. */
  private contact(): void {
    this.ctx.syncState.touch();
    this.persistContact(false);
  }

  /**
   * Keeps the last contact time in SQLite, at most every persistContactEveryMs,
   * so that MAX_STALENESS still counts from it after a restart. Off the hot path.
   */
  private persistContact(force: boolean): void {
    const { syncState, db, clock, logger } = this.ctx;
    const last = syncState.lastContactMs;
    if (last === null || !db.db.open) return;
    if (!force && clock.now() - this.contactPersistedAtMs < this.persistContactEveryMs) return;
    // Through the log writer's thread: the event loop never waits for SQLite's write lock.
    this.contactPersistedAtMs = clock.now();
    void this.ctx.logWriter.setMeta(META.lastContactAtMs, String(last)).then((ok) => {
      if (!ok) logger.warn("could not record the last contact time in the local cache");
    });
  }

  private publish(): void {
    const { syncState: s, metrics, keyIndex } = this.ctx;
    metrics.syncState({ appliedRevision: s.appliedRevision, keys: keyIndex.size, connected: s.connected });
  }
}
