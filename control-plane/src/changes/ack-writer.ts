import { sql } from "kysely";
import type { Db } from "../db/database.js";
import type { ChangeNotifier } from "./notifier.js";
import { ACKS_PREFIX, CHANGES_CHANNEL } from "./channels.js";

/** How long this replica waits to hear its own acknowledgement NOTIFY back before it counts it lost. */
const ECHO_MS = 5_000;

interface PendingAck {
  id: string;
  orgId: string;
  revision: number;
  error: string | null;
}

export interface AckWriterOptions {
  /** Woken per organization once its acknowledgements are written (receipts wait on it). */
  acks: ChangeNotifier;
  /** Postgres: also tell the other replicas' receipts, through NOTIFY at commit. */
  notifyReplicas: boolean;
  /**
   * How often the liveness of idle gateways (`last_seen_at`) is written: a heartbeat
   * acknowledgement that moves no revision is answered at once and written with the
   * others at this pace, one statement for the whole fleet (default 1 s).
   */
  heartbeatFlushMs?: number;
  /**
   * GATEWAY_OFFLINE_AFTER: a gateway whose liveness was written longer ago than half of it
   * has its heartbeat written at once, so one that was shown offline is shown back at once.
   */
  offlineAfterMs?: number;
}

/**
 * Coalesces gateway acknowledgements into one UPDATE per flush: a write seen by
 * 50 gateways costs one statement, not 50. Each caller waits for the flush that
 * carries its acknowledgement, so an answered Acknowledge is durable; receipts on
 * this replica are woken as the acknowledgement arrives, before that write. A flush
 * starts on the next turn of the event loop, not after a delay: what arrives
 * while one is in flight is what the next one carries, so a lone gateway's
 * acknowledgement waits for no timer.
 */
export class AckWriter {
  private pending = new Map<string, PendingAck>();
  private flushing: Promise<Set<string>> | undefined;
  private timer: NodeJS.Immediate | undefined;
  /** Applied revision per gateway, as this replica last wrote it: receipts read it without a query. */
  private readonly written = new Map<string, number>();
  /**
   * Applied revision per gateway as acknowledged to this replica, before the UPDATE: the gateway
   * has applied it, so a receipt need not wait for the write (4–5 ms of a 12 ms receipt on
   * Postgres). Kept with the organization of the token that sent it: a receipt counts it only
   * for a gateway of that organization.
   */
  private readonly received = new Map<string, { orgId: string; revision: number }>();
  private waiters: Array<{ id: string; resolve: (known: boolean) => void; reject: (err: unknown) => void }> = [];
  /** Heartbeats (acknowledgements of a revision already written) waiting for the next liveness write. */
  private heartbeats = new Map<string, PendingAck>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** When this replica last wrote each gateway's last_seen_at (Date.now()). */
  private readonly seenWrittenAt = new Map<string, number>();
  /**
   * Per organization, when this replica sent the acknowledgement NOTIFYs it has not heard back
   * yet (Date.now()): Postgres delivers a replica its own NOTIFY too, and that echo must not
   * send receipts back to the table. The payload stays `acks:<org>`, as every release reads it.
   */
  private readonly ownEchoes = new Map<string, number[]>();
  /** Per organization, how many times another replica said it wrote acknowledgements. */
  private readonly remoteWrites = new Map<string, number>();

  constructor(
    private readonly db: Db,
    private readonly options: AckWriterOptions,
  ) {}

  /** Resolves true when the gateway exists in that organization. */
  record(ack: PendingAck): Promise<boolean> {
    if (this.isHeartbeat(ack)) {
      // Nothing waits on it but last_seen_at: answered now, written with the fleet's others.
      this.heartbeats.set(ack.id, ack);
      this.heartbeatTimer ??= setTimeout(() => void this.flushHeartbeats(), this.options.heartbeatFlushMs ?? 1000);
      this.heartbeatTimer.unref();
      return Promise.resolve(true);
    }
    if (ack.error === null) {
      this.received.set(ack.id, { orgId: ack.orgId, revision: ack.revision });
      this.options.acks.notify(ack.orgId);
    }
    const prev = this.pending.get(ack.id);
    // An error report is never merged away by a later success in the same flush.
    if (!prev || !prev.error || ack.error) this.pending.set(ack.id, ack);
    const done = new Promise<boolean>((resolve, reject) => this.waiters.push({ id: ack.id, resolve, reject }));
    this.timer ??= setImmediate(() => void this.flush());
    return done;
  }

  private async flush(): Promise<void> {
    this.timer = undefined;
    if (this.flushing) await this.flushing.catch(() => undefined);
    const batch = [...this.pending.values()];
    const waiters = this.waiters;
    this.pending = new Map();
    this.waiters = [];
    if (batch.length === 0) return;
    this.flushing = this.write(batch);
    try {
      const known = await this.flushing;
      for (const w of waiters) w.resolve(known.has(w.id));
    } catch (err) {
      for (const w of waiters) w.reject(err);
    } finally {
      this.flushing = undefined;
    }
  }

  private async write(batch: PendingAck[]): Promise<Set<string>> {
    const values = sql.join(
      batch.map((a) => sql`(${a.id}::text, ${a.orgId}::text, ${a.revision}::bigint, ${a.error}::text)`),
    );
    const rows = await sql<{ id: string; org_id: string }>`
      update gateways as g
         set applied_revision = case when v.err is null then v.rev else g.applied_revision end,
             last_error = v.err,
             last_seen_at = now()
        from (values ${values}) as v(id, org, rev, err)
       where g.id = v.id and g.org_id = v.org
      returning g.id, g.org_id`.execute(this.db);
    const stored = new Set(rows.rows.map((r) => r.id));
    const at = Date.now();
    for (const a of batch) {
      if (!stored.has(a.id)) continue;
      this.seenWrittenAt.set(a.id, at);
      // After an error report the next success is written in full (it clears last_error).
      if (a.error === null) this.written.set(a.id, a.revision);
      else this.written.delete(a.id);
    }
    const orgs = [...new Set(rows.rows.map((r) => r.org_id))];
    for (const org of orgs) this.options.acks.notify(org);
    if (this.options.notifyReplicas && orgs.length > 0) {
      const now = Date.now();
      for (const org of orgs) {
        const sent = this.ownEchoes.get(org);
        if (sent) sent.push(now);
        else this.ownEchoes.set(org, [now]);
      }
      await sql`select pg_notify(${CHANGES_CHANNEL}, ${ACKS_PREFIX} || o) from unnest(${orgs}::text[]) as o`.execute(
        this.db,
      );
    }
    return new Set(rows.rows.map((r) => r.id));
  }

  /**
   * A NOTIFY said acknowledgements were written (payload after ACKS_PREFIX): unless this
   * replica wrote them, the receipts waiting here must read the table again.
   */
  acksWrittenElsewhere(orgId: string): void {
    if (orgId === "") return;
    const sent = this.ownEchoes.get(orgId);
    if (sent !== undefined) {
      // An echo not heard within ECHO_MS was lost (the listener reconnected): forget it.
      const now = Date.now();
      while (sent.length > 0 && now - sent[0]! > ECHO_MS) sent.shift();
      if (sent.length > 0) {
        // Postgres delivers notifications in commit order: the oldest unheard one of ours is this.
        sent.shift();
        if (sent.length === 0) this.ownEchoes.delete(orgId);
        return;
      }
      this.ownEchoes.delete(orgId);
    }
    this.remoteWrites.set(orgId, (this.remoteWrites.get(orgId) ?? 0) + 1);
    this.options.acks.notify(orgId);
  }

  /** Changes whenever another replica wrote acknowledgements of `orgId` (receipts re-read then, and only then). */
  remoteVersion(orgId: string): number {
    return this.remoteWrites.get(orgId) ?? 0;
  }

  /**
   * The revision `gatewayId` of `orgId` last acknowledged to this replica, written or not yet
   * (0: none).
   */
  appliedRevision(gatewayId: string, orgId: string): number {
    const received = this.received.get(gatewayId);
    return Math.max(this.written.get(gatewayId) ?? 0, received?.orgId === orgId ? received.revision : 0);
  }

  /**
   * A success for exactly the revision this replica has written for that gateway of that
   * organization, with nothing of it pending: an idle gateway's liveness report. Its
   * gateway is known (the write that stored the revision found its row).
   */
  private isHeartbeat(ack: PendingAck): boolean {
    return (
      ack.error === null &&
      this.written.get(ack.id) === ack.revision &&
      this.received.get(ack.id)?.orgId === ack.orgId &&
      !this.pending.has(ack.id) &&
      Date.now() - (this.seenWrittenAt.get(ack.id) ?? 0) < (this.options.offlineAfterMs ?? 15_000) / 2
    );
  }

  /** Writes the liveness of the gateways heard from since the last time, in one statement. */
  private async flushHeartbeats(): Promise<void> {
    this.heartbeatTimer = undefined;
    const batch = [...this.heartbeats.values()];
    this.heartbeats = new Map();
    // Advisory: the next heartbeat writes it again.
    await this.writeSeen(batch).catch(() => undefined);
  }

  /**
   * Records gateways as seen now (`last_seen_at`), in one statement: those whose connection
   * answered the control plane's pings (see StreamLiveness). Only a row of the gateway's own
   * organization is touched.
   */
  async writeSeen(gateways: ReadonlyArray<{ id: string; orgId: string }>): Promise<void> {
    if (gateways.length === 0) return;
    const values = sql.join(gateways.map((a) => sql`(${a.id}::text, ${a.orgId}::text)`));
    const at = Date.now();
    await sql`
      update gateways as g set last_seen_at = now()
        from (values ${values}) as v(id, org)
       where g.id = v.id and g.org_id = v.org`.execute(this.db);
    for (const a of gateways) this.seenWrittenAt.set(a.id, at);
  }

  /** Writes what is pending now (on stop). */
  async drain(): Promise<void> {
    if (this.timer !== undefined) clearImmediate(this.timer);
    if (this.heartbeatTimer !== undefined) clearTimeout(this.heartbeatTimer);
    await this.flush();
    await this.flushHeartbeats();
  }
}
