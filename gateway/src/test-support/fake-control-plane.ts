import { createServer, type Http2Server } from "node:http2";
import type { AddressInfo } from "node:net";
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
  SubscribeResponseSchema,
  type AcknowledgeRequest,
  type Change,
  type KeyUpsert,
  type SubscribeRequest,
  type SubscribeResponse,
} from "@tollgate/shared";

/**
 * A minimal KeySync server over real gRPC/HTTP2: answers every subscription
 * with a snapshot of `keys` at `revision`, then streams what `push` sends.
 */
export class FakeControlPlane {
  readonly subscriptions: SubscribeRequest[] = [];
  readonly acks: AcknowledgeRequest[] = [];
  /** Calls refused for a wrong token. */
  rejected = 0;
  private readonly listeners = new Set<(msg: SubscribeResponse) => void>();
  private server: Http2Server | undefined;
  url = "";

  constructor(
    public keys: KeyUpsert[],
    public revision: number,
    readonly token = "gwt-test-token",
    readonly orgId = "org_test",
  ) {}

  async start(): Promise<string> {
    const handler = connectNodeAdapter({
      routes: (router) =>
        router.service(KeySyncService, {
          subscribe: (req, ctx) => this.subscribe(req, ctx),
          acknowledge: (req, ctx) => {
            this.authorize(ctx);
            this.acks.push(req);
            return {};
          },
        }),
    });
    this.server = createServer(handler);
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  /** Sends a change batch to every open stream. */
  push(changes: Change[]): void {
    for (const c of changes) this.revision = Math.max(this.revision, Number(c.revision));
    this.pushEvent({ case: "changeBatch", value: create(ChangeBatchSchema, { changes }) });
  }

  /** Sends any event to every open stream. */
  pushEvent(event: SubscribeResponse["event"]): void {
    const msg = create(SubscribeResponseSchema, { event });
    for (const l of this.listeners) l(msg);
  }

  get openStreams(): number {
    return this.listeners.size;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
    });
  }

  private authorize(ctx: HandlerContext): void {
    if (ctx.requestHeader.get("authorization") !== `Bearer ${this.token}`) {
      this.rejected++;
      throw new ConnectError("unknown gateway token", Code.Unauthenticated);
    }
  }

  private async *subscribe(req: SubscribeRequest, ctx: HandlerContext): AsyncIterable<SubscribeResponse> {
    this.authorize(ctx);
    this.subscriptions.push(req);
    const queue: SubscribeResponse[] = [];
    let wake: (() => void) | undefined;
    const listener = (msg: SubscribeResponse) => {
      queue.push(msg);
      wake?.();
    };
    this.listeners.add(listener);
    try {
      const ev = (e: SubscribeResponse["event"]) => create(SubscribeResponseSchema, { event: e });
      yield ev({
        case: "snapshotBegin",
        value: create(SnapshotBeginSchema, {
          revision: BigInt(this.revision),
          reason: SnapshotReason.NEW_GATEWAY,
          orgId: this.orgId,
          keyCount: this.keys.length,
        }),
      });
      yield ev({ case: "snapshotChunk", value: create(SnapshotChunkSchema, { keys: this.keys }) });
      yield ev({ case: "snapshotEnd", value: create(SnapshotEndSchema, { revision: BigInt(this.revision) }) });
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
