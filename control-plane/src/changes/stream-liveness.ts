import type { Http2Session } from "node:http2";
import type { Logger } from "@tollgate/shared";

/** A gateway seen alive: its connection just answered a ping. */
export interface SeenGateway {
  id: string;
  orgId: string;
}

export interface StreamLivenessOptions {
  /**
   * How often each connection that carries a sync stream is pinged: a quarter of
   * GATEWAY_OFFLINE_AFTER at most, so an answered ping is written well inside the window.
   */
  intervalMs: number;
  /** A ping unanswered this long closes its connection (its streams end; the gateway reconnects). */
  timeoutMs: number;
  /** Records the gateways whose connection answered (one statement for all of them). */
  seen: (gateways: SeenGateway[]) => Promise<void>;
  logger: Logger;
  /** Counts pings by outcome. */
  onPing?: (outcome: "answered" | "timeout") => void;
}

interface TrackedStream {
  gatewayId: string;
  orgId: string;
}

interface SessionState {
  streams: Set<TrackedStream>;
  /** Date.now() when the unanswered ping went out; null when none is out. */
  pingSentAt: number | null;
}

/**
 * Liveness of the gateways from their open sync streams, so an idle gateway sends nothing
 * to stay "online": every `intervalMs` the control plane pings each HTTP/2 connection that
 * carries a stream (one PING frame, answered by the peer's HTTP/2 stack) and records every
 * gateway on a connection that answered, in one UPDATE for the whole fleet. A connection
 * that stops answering (a frozen process, a dead host, a partition that keeps the socket
 * open) is no longer recorded, so its gateway shows offline once GATEWAY_OFFLINE_AFTER
 * passes, and after `timeoutMs` it is closed, which ends its streams. One unary Acknowledge
 * per gateway per heartbeat interval cost ~2 ms of control-plane CPU each; a ping is a frame.
 */
export class StreamLiveness {
  private readonly sessions = new Map<Http2Session, SessionState>();
  /** Sessions whose "close" this already listens to (once each, however often streams come and go). */
  private readonly watched = new WeakSet<Http2Session>();
  private closed = false;
  private answered = new Map<string, SeenGateway>();
  private tickTimer: NodeJS.Timeout | undefined;
  /** When the last tick ran (Date.now()), to tell a silent peer from a stalled control plane. */
  private lastTickAt = 0;
  private writeTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;

  constructor(private readonly options: StreamLivenessOptions) {}

  /**
   * Counts the stream's gateway alive while `session` answers pings; call the result when the
   * stream ends. Undefined when it cannot (no HTTP/2 session): the gateway keeps heartbeating.
   */
  track(session: Http2Session | undefined, gatewayId: string, orgId: string): (() => void) | undefined {
    // Not trackable: the gateway must keep its heartbeat calls.
    if (session === undefined || session.destroyed || this.closed) return undefined;
    let state = this.sessions.get(session);
    if (state === undefined) {
      state = { streams: new Set(), pingSentAt: null };
      this.sessions.set(session, state);
      if (!this.watched.has(session)) {
        this.watched.add(session);
        session.once("close", () => this.forget(session));
      }
    }
    const stream = { gatewayId, orgId };
    state.streams.add(stream);
    this.tickTimer ??= setInterval(() => this.tick(), this.options.intervalMs).unref();
    const tracked = state;
    return () => {
      tracked.streams.delete(stream);
      if (tracked.streams.size === 0 && this.sessions.get(session) === tracked) this.forget(session);
    };
  }

  /** Connections being pinged now (tests, diagnostics). */
  get connections(): number {
    return this.sessions.size;
  }

  private forget(session: Http2Session): void {
    this.sessions.delete(session);
    if (this.sessions.size === 0 && this.tickTimer !== undefined) {
      clearInterval(this.tickTimer);
      this.tickTimer = undefined;
      this.lastTickAt = 0;
    }
  }

  private tick(): void {
    const now = Date.now();
    // A tick this late means this process did not run (a long pause, a stall): the answers
    // may be waiting unread in the sockets. Nothing is judged silent this round; the pings
    // out get a whole timeout again.
    const stalled = this.lastTickAt !== 0 && now - this.lastTickAt > 2 * this.options.intervalMs;
    this.lastTickAt = now;
    for (const [session, state] of this.sessions) {
      if (session.destroyed || session.closed) {
        this.forget(session);
        continue;
      }
      if (state.pingSentAt !== null) {
        if (stalled) state.pingSentAt = now;
        if (now - state.pingSentAt < this.options.timeoutMs) continue;
        this.options.onPing?.("timeout");
        const gateways = [...new Set([...state.streams].map((s) => s.gatewayId))];
        this.options.logger.warn(
          { gatewayIds: gateways, silentMs: now - state.pingSentAt },
          "gateway connection stopped answering pings: closing it (the gateway reconnects when it can)",
        );
        this.forget(session);
        session.destroy();
        continue;
      }
      state.pingSentAt = now;
      const sent = session.ping((err) => {
        state.pingSentAt = null;
        // The session closed (its streams end and mark the gateway disconnected), or this stopped.
        if (err || this.closed) return;
        this.options.onPing?.("answered");
        for (const s of state.streams) this.answered.set(s.gatewayId, { id: s.gatewayId, orgId: s.orgId });
        // The pings of one tick come back together: one write carries them all.
        this.writeTimer ??= setTimeout(() => void this.write(), 20).unref();
      });
      if (!sent) state.pingSentAt = null;
    }
  }

  private async write(): Promise<void> {
    this.writeTimer = undefined;
    if (this.writing) return; // the next answered ping schedules the rest
    const batch = [...this.answered.values()];
    this.answered = new Map();
    if (batch.length === 0) return;
    this.writing = this.options.seen(batch).catch((err: unknown) => {
      this.options.logger.warn({ err }, "could not record gateway liveness (the next ping writes it again)");
    });
    try {
      await this.writing;
    } finally {
      this.writing = undefined;
    }
  }

  /** Stops pinging (on shutdown); writes what was answered. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer);
    this.tickTimer = undefined;
    if (this.writeTimer !== undefined) clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    this.sessions.clear();
    await this.writing;
    await this.write();
  }
}
