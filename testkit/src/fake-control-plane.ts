import {
  createSecureServer,
  createServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2Session,
} from "node:http2";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  ChangeBatchSchema,
  KeySyncService,
  SnapshotBeginSchema,
  SnapshotChunkSchema,
  SnapshotEndSchema,
  SnapshotReason,
  SettingsSchema,
  SubscribeResponseSchema,
  type AcknowledgeRequest,
  type AcknowledgeStreamRequest,
  type Change,
  type KeyUpsert,
  type SigningKey,
  type SubscribeRequest,
  type SubscribeResponse,
} from "@tollgate/shared";

export interface FakeControlPlaneOptions {
  /** Serve https (HTTP/2 over TLS); with `ca`, require and verify client certificates (mTLS). */
  tls?: { key: string; cert: string; ca?: string };
  /**
   * Answer a subscription whose revision the change log covers with the
   * deltas after it instead of a snapshot, like the real control plane.
   */
  resume?: boolean;
  /**
   * With `resume`: also replay this many changes at or below the gateway's
   * revision, as a sloppy server might; the gateway must skip them.
   */
  replayOverlap?: number;
  /** Delay before answering each Acknowledge. */
  ackDelayMs?: number;
  /**
   * Open each stream with settings that announce stream liveness, like the real control
   * plane: the gateway then sends no heartbeat acknowledgements.
   */
  streamLiveness?: boolean;
  /**
   * Serve AcknowledgeStream and say so in the settings, like the real control plane; "fail"
   * answers its first message with Unavailable (a write that failed).
   */
  acknowledgeStream?: boolean | "fail";
}

/**
 * A minimal KeySync server over real gRPC/HTTP2: answers every subscription
 * with a snapshot of `keys` (and `signingKeys`) at `revision` (or, with `resume`, the deltas after
 * the gateway's revision), then streams what `push` sends.
 */
export class FakeControlPlane {
  readonly subscriptions: SubscribeRequest[] = [];
  /** The `grpc-accept-encoding` each subscription sent ("" when none): what it let the server compress with. */
  readonly subscriptionEncodings: string[] = [];
  readonly acks: Array<AcknowledgeRequest | AcknowledgeStreamRequest> = [];
  /** Changes sent with `push`, for resuming subscriptions. */
  readonly log: Change[] = [];
  /** Calls refused for a wrong token. */
  rejected = 0;
  /** TLS handshakes that failed (e.g. no client certificate under mTLS). */
  tlsFailures = 0;
  /** The organization's token-signing public keys, sent in a snapshot's first chunk. */
  signingKeys: SigningKey[] = [];
  /** Acknowledgements that came as single calls, and as messages of AcknowledgeStream calls. */
  unaryAcks = 0;
  streamedAcks = 0;
  /** Most Acknowledge calls ever in flight at once. */
  maxConcurrentAcks = 0;
  private acksInFlight = 0;
  private readonly listeners = new Set<(msg: SubscribeResponse) => void>();
  private readonly sessions = new Set<Http2Session>();
  private server: Http2Server | Http2SecureServer | undefined;
  /** Revision of `keys`; the change log starts after it. */
  private readonly baseRevision: number;
  private gate: Promise<void> | null = null;
  private openGate: (() => void) | undefined;
  url = "";

  constructor(
    public keys: KeyUpsert[],
    public revision: number,
    readonly token = "gwt-test-token",
    readonly orgId = "org_test",
    readonly options: FakeControlPlaneOptions = {},
  ) {
    this.baseRevision = revision;
  }

  async start(): Promise<string> {
    const handler = connectNodeAdapter({
      routes: (router) =>
        router.service(KeySyncService, {
          subscribe: (req, ctx) => this.subscribe(req, ctx),
          acknowledge: async (req, ctx) => {
            this.authorize(ctx);
            this.acksInFlight++;
            this.maxConcurrentAcks = Math.max(this.maxConcurrentAcks, this.acksInFlight);
            try {
              if (this.options.ackDelayMs) await sleep(this.options.ackDelayMs);
              this.acks.push(req);
              this.unaryAcks++;
              return {};
            } finally {
              this.acksInFlight--;
            }
          },
          acknowledgeStream: async (reqs, ctx) => {
            this.authorize(ctx);
            if (!this.options.acknowledgeStream) throw new ConnectError("not served", Code.Unimplemented);
            for await (const req of reqs) {
              if (this.options.acknowledgeStream === "fail")
                throw new ConnectError("could not record an acknowledgement", Code.Unavailable);
              this.acks.push(req);
              this.streamedAcks++;
            }
            return {};
          },
        }),
    });
    const tls = this.options.tls;
    const server = tls
      ? createSecureServer(
          {
            key: tls.key,
            cert: tls.cert,
            ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
          },
          handler,
        )
      : createServer(handler);
    server.on("session", (s: Http2Session) => {
      this.sessions.add(s);
      s.once("close", () => this.sessions.delete(s));
    });
    server.on("tlsClientError", () => this.tlsFailures++);
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.url = `${tls ? "https" : "http"}://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.url;
  }

  /** Sends a change batch to every open stream, and keeps it in the change log. */
  push(changes: Change[]): void {
    for (const c of changes) {
      this.revision = Math.max(this.revision, Number(c.revision));
      this.log.push(c);
    }
    this.pushEvent({ case: "changeBatch", value: create(ChangeBatchSchema, { changes }) });
  }

  /** Appends changes to the log without sending them: commits made while no gateway listens. */
  record(changes: Change[]): void {
    for (const c of changes) {
      this.revision = Math.max(this.revision, Number(c.revision));
      this.log.push(c);
    }
  }

  /** New subscriptions are recorded but get no answer until releaseSubscriptions(). */
  holdSubscriptions(): void {
    this.gate ??= new Promise<void>((resolve) => {
      this.openGate = resolve;
    });
  }

  releaseSubscriptions(): void {
    this.openGate?.();
    this.gate = null;
  }

  /** Sends any event to every open stream. */
  pushEvent(event: SubscribeResponse["event"]): void {
    const msg = create(SubscribeResponseSchema, { event });
    for (const l of this.listeners) l(msg);
  }

  get openStreams(): number {
    return this.listeners.size;
  }

  /** Cuts every HTTP/2 connection, as a crashed control plane or a broken network would. */
  dropConnections(): void {
    for (const s of this.sessions) s.destroy();
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      this.dropConnections();
    });
  }

  private authorize(ctx: HandlerContext): void {
    if (ctx.requestHeader.get("authorization") !== `Bearer ${this.token}`) {
      this.rejected++;
      throw new ConnectError("unknown gateway token", Code.Unauthenticated);
    }
  }

  /** What answers a subscription: the deltas after its revision, or null for a snapshot. */
  private resumeBatch(req: SubscribeRequest): Change[] | null {
    const from = Number(req.lastRevision);
    if (!this.options.resume || from === 0 || req.orgId !== this.orgId) return null;
    if (from < this.baseRevision || from > this.revision) return null;
    const after = from - (this.options.replayOverlap ?? 0);
    return this.log.filter((c) => Number(c.revision) > after);
  }

  private async *subscribe(req: SubscribeRequest, ctx: HandlerContext): AsyncIterable<SubscribeResponse> {
    this.authorize(ctx);
    this.subscriptions.push(req);
    this.subscriptionEncodings.push(ctx.requestHeader.get("grpc-accept-encoding") ?? "");
    if (this.gate) {
      const gate = this.gate;
      await new Promise<void>((resolve) => {
        void gate.then(resolve);
        ctx.signal.addEventListener("abort", () => resolve(), { once: true });
      });
      if (ctx.signal.aborted) return;
    }
    const queue: SubscribeResponse[] = [];
    let wake: (() => void) | undefined;
    const listener = (msg: SubscribeResponse) => {
      queue.push(msg);
      wake?.();
    };
    this.listeners.add(listener);
    try {
      const ev = (e: SubscribeResponse["event"]) => create(SubscribeResponseSchema, { event: e });
      if (this.options.streamLiveness || this.options.acknowledgeStream) {
        yield ev({
          case: "settings",
          value: create(SettingsSchema, {
            streamLiveness: this.options.streamLiveness ?? false,
            acknowledgeStream: Boolean(this.options.acknowledgeStream),
          }),
        });
      }
      const deltas = this.resumeBatch(req);
      if (deltas !== null) {
        if (deltas.length > 0) yield ev({ case: "changeBatch", value: create(ChangeBatchSchema, { changes: deltas }) });
      } else {
        yield ev({
          case: "snapshotBegin",
          value: create(SnapshotBeginSchema, {
            revision: BigInt(this.revision),
            reason: SnapshotReason.NEW_GATEWAY,
            orgId: this.orgId,
            keyCount: this.keys.length,
          }),
        });
        // Like the real control plane: no chunk at all when there is nothing to carry.
        if (this.keys.length > 0 || this.signingKeys.length > 0) {
          yield ev({
            case: "snapshotChunk",
            value: create(SnapshotChunkSchema, { keys: this.keys, signingKeys: this.signingKeys }),
          });
        }
        yield ev({ case: "snapshotEnd", value: create(SnapshotEndSchema, { revision: BigInt(this.revision) }) });
      }
      while (!ctx.signal.aborted) {
        const next = queue.shift();
        if (next) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          ctx.signal.addEventListener("abort", () => resolve(), { once: true });
        });
        wake = undefined;
      }
    } finally {
      this.listeners.delete(listener);
    }
  }
}
