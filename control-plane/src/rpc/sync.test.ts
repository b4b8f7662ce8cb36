import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  hashApiKey,
  KeySyncService,
  newId,
  SnapshotReason,
  type Change,
  type SubscribeResponse,
} from "@tollgate/shared";
import type { ControlPlane } from "../index.js";
import { startTestControlPlane, type TestControlPlane } from "../../test/test-control-plane.js";
import { TEST_MASTER_KEY } from "../../test/test-config.js";
import { eventually } from "@tollgate/testkit";

const MASTER_KEY = TEST_MASTER_KEY;
let test: TestControlPlane;
let cp: ControlPlane;
let admin: string;
let client: Client<typeof KeySyncService>;
let token: string;
let userId: string;

async function post(path: string, body: unknown) {
  const res = await fetch(admin + path, {
    method: "POST",
    headers: { authorization: `Bearer ${MASTER_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return (await res.json()) as Record<string, string>;
}

/** The id of a key or signing-key change (prices have none). */
function opId(c: Change): string | undefined {
  return c.op.value && "id" in c.op.value ? c.op.value.id : undefined;
}

/** Reads events from a stream until `until` says stop. */
async function take(
  it: AsyncIterator<SubscribeResponse>,
  until: (events: SubscribeResponse[]) => boolean,
): Promise<SubscribeResponse[]> {
  const events: SubscribeResponse[] = [];
  while (!until(events)) {
    const next = await it.next();
    if (next.done) break;
    events.push(next.value);
  }
  return events;
}

beforeAll(async () => {
  test = await startTestControlPlane({ heartbeatIntervalMs: 200, maxBodyBytes: 64 * 1024 });
  cp = test.cp;
  admin = test.base;
  client = createClient(KeySyncService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${test.grpcPort}` }));
  token = (await post("/internal/gateway-tokens", { name: "test" })).token!;
  userId = (await post("/internal/users", { external_id: "alice@example.com" })).id!;
});

afterAll(async () => {
  await test?.stop();
});

describe("KeySyncService over gRPC", () => {
  it("refuses a missing or unknown gateway token with Unauthenticated", async () => {
    for (const headers of [{}, { authorization: "Bearer tgw_wrong" }]) {
      const stream = client.subscribe({ gatewayId: newId("gw"), lastRevision: 0n }, { headers });
      const err = await stream[Symbol.asyncIterator]()
        .next()
        .then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
      expect(err?.code).toBe(Code.Unauthenticated);
    }
  });

  it("sends a snapshot to a new gateway, then each change as it commits, and records acknowledgements", async () => {
    const first = await post("/internal/api-keys", { name: "before", user_id: userId });
    const gatewayId = newId("gw");
    const abort = new AbortController();
    const headers = { authorization: `Bearer ${token}` };
    const it = client
      .subscribe(
        { gatewayId, gatewayName: "gw-a", version: "test", lastRevision: 0n },
        { headers, signal: abort.signal },
      )
      [Symbol.asyncIterator]();

    const snapshot = await take(it, (ev) => ev.some((e) => e.event.case === "snapshotEnd"));
    // Every stream opens with the control plane's settings (quota defaults), then the snapshot.
    expect(snapshot[0]!.event.case).toBe("settings");
    const begin = snapshot[1]!.event;
    expect(begin.case).toBe("snapshotBegin");
    if (begin.case !== "snapshotBegin") throw new Error("unreachable");
    expect(begin.value.reason).toBe(SnapshotReason.NEW_GATEWAY);
    const keys = snapshot.flatMap((e) => (e.event.case === "snapshotChunk" ? e.event.value.keys : []));
    expect(keys.map((k) => k.id)).toEqual([first.id]);
    expect(Buffer.from(keys[0]!.keyHash).equals(hashApiKey(first.key!))).toBe(true);
    const revision = begin.value.revision;

    await client.acknowledge({ gatewayId, revision }, { headers });
    const second = await post("/internal/api-keys", { name: "after", user_id: userId });
    const live = await take(it, (ev) => ev.some((e) => e.event.case === "changeBatch"));
    const batch = live.find((e) => e.event.case === "changeBatch")!.event;
    if (batch.case !== "changeBatch") throw new Error("unreachable");
    expect(batch.value.changes.map((c) => [Number(c.revision), c.op.case, opId(c)])).toEqual([
      [Number(revision) + 1, "keyUpsert", second.id],
    ]);

    await fetch(`${admin}/internal/api-keys/${first.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${MASTER_KEY}` },
    });
    const del = await take(it, (ev) => ev.some((e) => e.event.case === "changeBatch"));
    const delBatch = del.find((e) => e.event.case === "changeBatch")!.event;
    if (delBatch.case !== "changeBatch") throw new Error("unreachable");
    expect(delBatch.value.changes.map((c) => [Number(c.revision), c.op.case, opId(c)])).toEqual([
      [Number(revision) + 2, "keyDelete", first.id],
    ]);
    await client.acknowledge({ gatewayId, revision: revision + 2n }, { headers });

    const gateways = (await (
      await fetch(`${admin}/internal/gateways`, { headers: { authorization: `Bearer ${MASTER_KEY}` } })
    ).json()) as {
      data: Array<{ id: string }>;
    };
    const row = gateways.data.find((g: { id: string }) => g.id === gatewayId);
    expect(row).toMatchObject({ name: "gw-a", connected: true, applied_revision: Number(revision) + 2, lag: 0 });

    // Idle streams carry heartbeats with the current revision.
    const idle = await take(it, (ev) => ev.some((e) => e.event.case === "heartbeat"));
    const hb = idle.find((e) => e.event.case === "heartbeat")!.event;
    if (hb.case !== "heartbeat") throw new Error("unreachable");
    expect(hb.value.revision).toBe(revision + 2n);
    abort.abort();
  });

  it("resumes a known revision with only the changes after it", async () => {
    const gatewayId = newId("gw");
    const headers = { authorization: `Bearer ${token}` };
    const a = new AbortController();
    const first = client
      .subscribe({ gatewayId, lastRevision: 0n }, { headers, signal: a.signal })
      [Symbol.asyncIterator]();
    const snap = await take(first, (ev) => ev.some((e) => e.event.case === "snapshotEnd"));
    const end = snap.at(-1)!.event;
    if (end.case !== "snapshotEnd") throw new Error("unreachable");
    a.abort();

    const missed = await post("/internal/api-keys", { name: "while-away", user_id: userId });
    const b = new AbortController();
    const resumed = client
      .subscribe({ gatewayId, lastRevision: end.value.revision, orgId: "" }, { headers, signal: b.signal })
      [Symbol.asyncIterator]();
    const events = await take(resumed, (ev) => ev.some((e) => e.event.case === "changeBatch"));
    expect(events.some((e) => e.event.case === "snapshotBegin")).toBe(false);
    const batch = events.find((e) => e.event.case === "changeBatch")!.event;
    if (batch.case !== "changeBatch") throw new Error("unreachable");
    expect(batch.value.changes.map(opId)).toEqual([missed.id]);
    b.abort();
  });

  it("answers a revision ahead of the server with a snapshot marked as such", async () => {
    const headers = { authorization: `Bearer ${token}` };
    const c = new AbortController();
    const it = client
      .subscribe({ gatewayId: newId("gw"), lastRevision: 1_000_000n }, { headers, signal: c.signal })
      [Symbol.asyncIterator]();
    expect(((await it.next()).value as SubscribeResponse).event.case).toBe("settings");
    const first = (await it.next()).value as SubscribeResponse;
    expect(first.event.case).toBe("snapshotBegin");
    expect(first.event.case === "snapshotBegin" && first.event.value.reason).toBe(SnapshotReason.AHEAD);
    c.abort();
  });

  it("records acknowledgements sent as messages of one AcknowledgeStream call, and ends the call when the token is revoked", async () => {
    const created = await post("/internal/gateway-tokens", { name: "ack-stream" });
    const headers = { authorization: `Bearer ${created.token}` };
    const gatewayId = newId("gw");
    const sub = client.subscribe({ gatewayId, lastRevision: 0n }, { headers })[Symbol.asyncIterator]();
    const events = await take(sub, (ev) => ev.some((e) => e.event.case === "snapshotEnd"));
    const settings = events[0]!.event;
    expect(settings.case === "settings" && settings.value.acknowledgeStream).toBe(true);
    const end = events.at(-1)!.event;
    if (end.case !== "snapshotEnd") throw new Error("unreachable");

    // The request side: messages pushed while the call stays open.
    const queue: Array<{ gatewayId: string; revision: bigint }> = [];
    let wake: (() => void) | undefined;
    const send = (revision: bigint) => {
      queue.push({ gatewayId, revision });
      wake?.();
    };
    const call = client.acknowledgeStream(
      (async function* () {
        for (;;) {
          while (queue.length > 0) yield queue.shift()!;
          await new Promise<void>((r) => (wake = r));
        }
      })(),
      { headers },
    );
    // Handled from the start: the call ends (rejects) while the revocation is still being answered.
    const callEnd = call.then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    const row = async () =>
      (
        (await (
          await fetch(`${admin}/internal/gateways`, { headers: { authorization: `Bearer ${MASTER_KEY}` } })
        ).json()) as { data: Array<{ id: string; applied_revision: number }> }
      ).data.find((g) => g.id === gatewayId);
    send(end.value.revision);
    await eventually(async () => ((await row())?.applied_revision === Number(end.value.revision) ? true : undefined));

    // A key write, acknowledged by the next message on the same call.
    await post(`/internal/api-keys?wait_for_gateways=0s`, { name: "acked-by-stream", user_id: userId });
    const batch = await take(sub, (ev) => ev.some((e) => e.event.case === "changeBatch"));
    const changes = batch.flatMap((e) => (e.event.case === "changeBatch" ? e.event.value.changes : []));
    send(changes.at(-1)!.revision);
    await eventually(async () =>
      (await row())?.applied_revision === Number(changes.at(-1)!.revision) ? true : undefined,
    );

    await fetch(`${admin}/internal/gateway-tokens/${created.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${MASTER_KEY}` },
    });
    const err = await callEnd;
    expect(err?.code).toBe(Code.PermissionDenied);
    // The token's change stream ends the same way.
    const subErr = await (async () => {
      for (;;) if ((await sub.next()).done) return undefined;
    })().catch((e: unknown) => ConnectError.from(e));
    expect(subErr?.code).toBe(Code.PermissionDenied);
  });

  it("closes the stream at once when its gateway token is revoked", async () => {
    const created = await post("/internal/gateway-tokens", { name: "short-lived" });
    const headers = { authorization: `Bearer ${created.token}` };
    const it = client.subscribe({ gatewayId: newId("gw"), lastRevision: 0n }, { headers })[Symbol.asyncIterator]();
    await take(it, (ev) => ev.some((e) => e.event.case === "snapshotEnd"));
    await fetch(`${admin}/internal/gateway-tokens/${created.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${MASTER_KEY}` },
    });
    const err = await (async () => {
      for (;;) {
        const next = await it.next();
        if (next.done) return undefined;
      }
    })().catch((e: unknown) => ConnectError.from(e));
    expect(err?.code).toBe(Code.PermissionDenied);
  });
});
