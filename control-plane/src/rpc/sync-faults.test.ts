import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { KeySyncService, newId, SnapshotReason, type SubscribeResponse } from "@tollgate/shared";
import type { ControlPlaneConfig } from "../config.js";
import type { ControlPlane } from "../index.js";
import { startTestControlPlane } from "../../test/test-control-plane.js";
import { eventually, makeTestPki, startTcpRelay } from "@tollgate/testkit";
import { TEST_MASTER_KEY } from "../../test/test-config.js";

interface Harness {
  cp: ControlPlane;
  admin: string;
  grpcPort: number;
  client: Client<typeof KeySyncService>;
  token: string;
  userId: string;
  post(path: string, body: unknown): Promise<{ status: number; body: any }>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function startHarness(overrides: Partial<ControlPlaneConfig> = {}): Promise<Harness> {
  const test = await startTestControlPlane({ heartbeatIntervalMs: 200, ...overrides });
  cleanups.push(() => test.stop());
  const { cp } = test;
  const ports = { port: test.port, grpcPort: test.grpcPort };
  const admin = `http://127.0.0.1:${ports.port}`;
  const post = async (path: string, body: unknown) => {
    const res = await fetch(admin + path, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_MASTER_KEY}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const scheme = overrides.grpcTls ? "https://localhost" : "http://127.0.0.1";
  const client = createClient(KeySyncService, createGrpcTransport({ baseUrl: `${scheme}:${ports.grpcPort}` }));
  const token = (await post("/internal/gateway-tokens", { name: "faults" })).body.token;
  const userId = (await post("/internal/users", { external_id: "alice@example.com" })).body.id;
  return { cp, admin, grpcPort: ports.grpcPort, client, token, userId, post };
}

/** A subscriber that keeps every event and optionally acknowledges what it receives, like a gateway. */
function subscriber(
  h: Harness,
  opts: { lastRevision?: bigint; autoAck?: boolean; client?: Client<typeof KeySyncService> } = {},
) {
  const gatewayId = newId("gw");
  const abort = new AbortController();
  const headers = { authorization: `Bearer ${h.token}` };
  const client = opts.client ?? h.client;
  const events: SubscribeResponse[] = [];
  let revision = opts.lastRevision ?? 0n;
  const done = (async () => {
    for await (const ev of client.subscribe(
      { gatewayId, gatewayName: gatewayId, lastRevision: revision },
      { headers, signal: abort.signal },
    )) {
      events.push(ev);
      if (ev.event.case === "snapshotEnd") revision = ev.event.value.revision;
      if (ev.event.case === "changeBatch") revision = ev.event.value.changes.at(-1)!.revision;
      if (
        opts.autoAck &&
        (ev.event.case === "snapshotEnd" || ev.event.case === "changeBatch" || ev.event.case === "heartbeat")
      ) {
        await client.acknowledge({ gatewayId, revision }, { headers });
      }
    }
  })().catch((err: unknown) => {
    if (!abort.signal.aborted) throw err;
  });
  cleanups.push(async () => {
    abort.abort();
    await done;
  });
  return {
    gatewayId,
    events,
    get revision() {
      return revision;
    },
    ack: (rev: bigint) => client.acknowledge({ gatewayId, revision: rev }, { headers }),
    stop: async () => {
      abort.abort();
      await done;
    },
    until: async (pred: (events: SubscribeResponse[]) => boolean, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!pred(events)) {
        if (Date.now() > deadline) throw new Error(`timed out; events: ${events.map((e) => e.event.case).join(",")}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
}

const batches = (events: SubscribeResponse[]) =>
  events.flatMap((e) => (e.event.case === "changeBatch" ? [e.event.value.changes] : []));

describe("sync under load and faults", () => {
  it("delivers a 10,000-key bulk import in a few large consecutive batches", async () => {
    const h = await startHarness();
    const sub = subscriber(h);
    await sub.until((ev) => ev.some((e) => e.event.case === "snapshotEnd"));
    const start = sub.revision;
    const keys = Array.from({ length: 10_000 }, (_, i) => ({ name: `bulk-${i}`, user_id: h.userId }));
    const res = await h.post("/internal/api-keys/bulk", { keys });
    expect(res.status).toBe(201);
    expect(res.body.data).toHaveLength(10_000);
    expect(new Set(res.body.data.map((k: { key: string }) => k.key)).size).toBe(10_000);
    expect(res.body.revision).toBe(Number(start) + 10_000);
    await sub.until(() => sub.revision === start + 10_000n, 30_000);
    const got = batches(sub.events);
    expect(got.length).toBeLessThanOrEqual(3);
    const revisions = got.flat().map((c) => Number(c.revision));
    expect(revisions).toEqual(Array.from({ length: 10_000 }, (_, i) => Number(start) + i + 1));

    const bad = await h.post("/internal/api-keys/bulk", {
      keys: [
        { name: "ok", user_id: h.userId },
        { name: "x", user_id: "user_00000000000000000000000000" },
      ],
    });
    expect(bad.status).toBe(404);
    expect(bad.body.error.field).toBe("keys.1.user_id");
    const tooMany = await h.post("/internal/api-keys/bulk", {
      keys: Array.from({ length: 10_001 }, () => ({ name: "k", user_id: h.userId })),
    });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.field).toBe("keys");
    await new Promise((r) => setTimeout(r, 100));
    expect(sub.revision).toBe(start + 10_000n); // the refused imports wrote nothing
  }, 60_000);

  it("answers ?wait_for_gateways with which gateways confirmed the revision in time", async () => {
    const h = await startHarness();
    const acking = subscriber(h, { autoAck: true });
    const silent = subscriber(h);
    await acking.until((ev) => ev.some((e) => e.event.case === "snapshotEnd"));
    await silent.until((ev) => ev.some((e) => e.event.case === "snapshotEnd"));
    const res = await h.post("/internal/api-keys?wait_for_gateways=400ms", { name: "receipt", user_id: h.userId });
    expect(res.status).toBe(201);
    expect(res.body.sync.complete).toBe(false);
    expect(res.body.sync.confirmed.map((g: { id: string }) => g.id)).toEqual([acking.gatewayId]);
    expect(res.body.sync.pending.map((g: { id: string }) => g.id)).toEqual([silent.gatewayId]);
    await silent.stop();

    const all = await h.post("/internal/api-keys?wait_for_gateways=5s", { name: "receipt-2", user_id: h.userId });
    expect(all.body.sync).toMatchObject({ complete: true, pending: [] });
    expect(all.body.sync.confirmed.map((g: { id: string }) => g.id)).toEqual([acking.gatewayId]);

    const bad = await h.post("/internal/api-keys?wait_for_gateways=forever", { name: "x", user_id: h.userId });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe("wait_for_gateways");
  });

  it("answers a key write once every connected gateway applied it, by default, and never waits past the bound", async () => {
    const h = await startHarness({ waitForGatewaysDefaultMs: 400 });
    const acking = subscriber(h, { autoAck: true });
    await acking.until((ev) => ev.some((e) => e.event.case === "snapshotEnd"));
    const res = await fetch(`${h.admin}/internal/api-keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_MASTER_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "ryw", user_id: h.userId }),
    });
    expect(res.status).toBe(201);
    const revision = BigInt(res.headers.get("x-tollgate-revision")!);
    // Read-your-writes: the gateway had the key when the create answered.
    expect(acking.revision).toBeGreaterThanOrEqual(revision);
    expect(res.headers.get("x-tollgate-sync")).toBe("complete; confirmed=1; pending=0");
    expect(((await res.json()) as { sync?: unknown }).sync).toBeUndefined();

    // A connected gateway that never applies it holds the answer only up to the default bound.
    const silent = subscriber(h);
    await silent.until((ev) => ev.some((e) => e.event.case === "snapshotEnd"));
    const slow = await fetch(`${h.admin}/internal/api-keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_MASTER_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "ryw-2", user_id: h.userId }),
    });
    expect(slow.status).toBe(201);
    expect(slow.headers.get("x-tollgate-sync")).toBe("incomplete; confirmed=1; pending=1");
    // ?wait_for_gateways=0 opts out: no wait, no receipt.
    const optOut = await h.post("/internal/api-keys?wait_for_gateways=0", { name: "ryw-3", user_id: h.userId });
    expect(optOut.status).toBe(201);
    expect(optOut.body.sync).toBeUndefined();
    // A gateway whose stream closed is not waited for.
    await silent.stop();
    const after = await fetch(`${h.admin}/internal/api-keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_MASTER_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "ryw-4", user_id: h.userId }),
    });
    expect(after.headers.get("x-tollgate-sync")).toBe("complete; confirmed=1; pending=0");
  }, 120_000);

  it("sends a snapshot marked COMPACTED to a gateway whose revision was compacted away", async () => {
    const h = await startHarness({ changeLogRetentionMs: 0, compactionIntervalMs: 50 });
    await h.post("/internal/api-keys", { name: "before", user_id: h.userId });
    const first = subscriber(h);
    await first.until((ev) => ev.some((e) => e.event.case === "snapshotEnd"));
    await first.stop();
    const left = first.revision;
    expect(left).toBeGreaterThan(0n);
    const missed = await h.post("/internal/api-keys", { name: "while-away", user_id: h.userId });
    await new Promise((r) => setTimeout(r, 300)); // a few compaction passes
    const back = subscriber(h, { lastRevision: left });
    await back.until((ev) => ev.some((e) => e.event.case === "snapshotEnd"));
    expect(back.events[0]!.event.case).toBe("settings");
    const begin = back.events[1]!.event;
    expect(begin.case).toBe("snapshotBegin");
    expect(begin.case === "snapshotBegin" && begin.value.reason).toBe(SnapshotReason.COMPACTED);
    const ids = back.events.flatMap((e) =>
      e.event.case === "snapshotChunk" ? e.event.value.keys.map((k) => k.id) : [],
    );
    expect(ids).toContain(missed.body.id);
  });

  const gatewayRow = async (h: Harness, gatewayId: string) =>
    (
      (await (
        await fetch(`${h.admin}/internal/gateways`, { headers: { authorization: `Bearer ${TEST_MASTER_KEY}` } })
      ).json()) as { data: Array<{ id: string; connected: boolean }> }
    ).data.find((g) => g.id === gatewayId);
  const cpMetrics = async (h: Harness) => (await fetch(`${h.admin}/metrics`)).text();

  /** A control plane (offline after 600 ms) and a subscriber that reaches it through a TCP relay that can freeze. */
  const subscribedThroughRelay = async () => {
    const h = await startHarness({ gatewayOfflineAfterMs: 600 });
    const relay = await startTcpRelay(h.grpcPort);
    cleanups.push(() => relay.close());
    const viaRelay = createClient(KeySyncService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${relay.port}` }));
    const sub = subscriber(h, { client: viaRelay });
    await sub.until((ev) => ev.some((e) => e.event.case === "snapshotEnd"));
    return { h, relay, sub };
  };

  it("keeps an idle gateway online from its open stream alone, with no acknowledgement, and says so in its settings", async () => {
    const h = await startHarness({ gatewayOfflineAfterMs: 1_200 });
    const sub = subscriber(h);
    await sub.until((ev) => ev.some((e) => e.event.case === "snapshotEnd"));
    const settings = sub.events[0]!.event;
    expect(settings.case === "settings" && settings.value.streamLiveness).toBe(true);
    // Several offline windows pass without a single Acknowledge: the answered pings keep it online.
    await eventually(async () =>
      /^tollgate_cp_sync_pings_total\{outcome="answered"\} (\d{2,})$/m.test(await cpMetrics(h)) ? true : undefined,
    );
    expect((await gatewayRow(h, sub.gatewayId))?.connected).toBe(true);
  });

  it("shows a gateway whose connection stops answering pings as offline, then closes that connection", async () => {
    const { h, relay, sub } = await subscribedThroughRelay();
    expect((await gatewayRow(h, sub.gatewayId))?.connected).toBe(true);

    // The gateway's host stops answering, but no reset reaches the control plane.
    relay.freeze();
    await eventually(async () => ((await gatewayRow(h, sub.gatewayId))?.connected === false ? true : undefined));
    await eventually(async () => {
      const text = await cpMetrics(h);
      return /^tollgate_cp_sync_pings_total\{outcome="timeout"\} 1$/m.test(text) &&
        /^tollgate_cp_sync_streams 0$/m.test(text)
        ? true
        : undefined;
    });

    // A gateway that connects again is online at once.
    const back = subscriber(h);
    await back.until((ev) => ev.some((e) => e.event.case === "snapshotEnd"));
    expect((await gatewayRow(h, back.gatewayId))?.connected).toBe(true);
  });

  it("does not take its own stall for a gateway's silence: a connection outlives a control-plane pause longer than the ping timeout", async () => {
    const { h, relay, sub } = await subscribedThroughRelay();
    const answered = async () =>
      Number(/^tollgate_cp_sync_pings_total\{outcome="answered"\} (\d+)$/m.exec(await cpMetrics(h))?.[1] ?? 0);
    await eventually(async () => ((await answered()) > 0 ? true : undefined));
    // A ping goes out and stays unanswered (pings leave every 150 ms here; the timeout is 600 ms)...
    relay.freeze();
    await new Promise((r) => setTimeout(r, 250));
    // ...then this process (the control plane) does not run for 1.5 s, and the answer is on its way when it resumes.
    const until = Date.now() + 1_500;
    while (Date.now() < until) {
      // busy: no timer, no socket read
    }
    relay.thaw();
    const after = await answered();
    await eventually(async () => ((await answered()) >= after + 2 ? true : undefined));
    const text = await cpMetrics(h);
    expect(text).not.toMatch(/^tollgate_cp_sync_pings_total\{outcome="timeout"\}/m);
    expect(text).toMatch(/^tollgate_cp_sync_streams 1$/m);
  });

  it("serves gRPC over mTLS and refuses a client without a certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tollgate-pki-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const pki = makeTestPki(dir);
    const h = await startHarness({ grpcTls: { cert: pki.serverCert, key: pki.serverKey, clientCa: pki.ca } });
    const withCert = createClient(
      KeySyncService,
      createGrpcTransport({
        baseUrl: `https://localhost:${h.grpcPort}`,
        nodeOptions: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey },
      }),
    );
    const sub = subscriber(h, { client: withCert });
    await sub.until((ev) => ev.some((e) => e.event.case === "snapshotEnd"));

    const noCert = createClient(
      KeySyncService,
      createGrpcTransport({ baseUrl: `https://localhost:${h.grpcPort}`, nodeOptions: { ca: pki.ca } }),
    );
    const err = await noCert
      .acknowledge(
        { gatewayId: newId("gw"), revision: 0n },
        { headers: { authorization: `Bearer ${h.token}` }, timeoutMs: 5000 },
      )
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
    expect(err).toBeDefined();
    expect(err!.code).not.toBe(Code.Unauthenticated); // refused at the TLS handshake, before any token check
  });
});
