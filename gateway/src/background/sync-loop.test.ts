import { afterEach, describe, expect, it } from "vitest";
import { PassThrough } from "node:stream";
import { create } from "@bufbuild/protobuf";
import { ChangeBatchSchema, createLogger, HeartbeatSchema, type Change } from "@tollgate/shared";
import { createGateway, type Gateway, type GatewayConfig } from "../index.js";
import { FakeControlPlane, makeKey, tempDir, upsertChange } from "@tollgate/testkit";
import { testConfig } from "../../test/test-config.js";

/** A logger whose lines the test can read. */
function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new PassThrough();
  stream.on("data", (b: Buffer) => {
    for (const l of b.toString("utf8").split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  return { logger: createLogger({ name: "gateway", level: "debug", destination: stream }), lines };
}

/** Sends changes without moving the fake's own revision, so its re-snapshot stays at 3. */
function sendBatch(cp: FakeControlPlane, changes: Change[]): void {
  cp.pushEvent({ case: "changeBatch", value: create(ChangeBatchSchema, { changes }) });
}

async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("sync client", () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(token?: string, extra: Partial<GatewayConfig> = {}) {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const key = makeKey();
    const cp = new FakeControlPlane([key.upsert], 3);
    await cp.start();
    cleanups.push(() => cp.stop());
    const config: GatewayConfig = testConfig(dir.path, cp.url, token ?? cp.token, {
      gatewayName: "sync-test",
      upstreamTimeoutMs: 1_000,
      maxBodyBytes: 1024,
      syncHeartbeatIntervalMs: 5_000,
      ...extra,
    });
    const { logger, lines } = capturedLogger();
    const gw: Gateway = createGateway(config, { logger, sync: { baseDelayMs: 10, maxDelayMs: 50 } });
    const { statusPort } = await gw.start();
    cleanups.push(() => gw.stop());
    const readyz = async () =>
      (await (await fetch(`http://127.0.0.1:${statusPort}/readyz`)).json()) as Record<string, unknown>;
    return { cp, gw, key, lines, readyz };
  }

  it("keeps retrying with a clear error when the token is rejected, and stays up", async () => {
    const { cp, lines, readyz } = await setup("not-the-token");
    await eventually(() => (cp.rejected >= 3 ? true : undefined));
    const err = lines.find((l) => l.level === 50 && String(l.msg).includes("GATEWAY_TOKEN was rejected"));
    expect(String(err?.msg)).toBe(
      `GATEWAY_TOKEN was rejected by the control plane at ${cp.url}: create a token with POST /internal/gateway-tokens`,
    );
    expect(await readyz()).toMatchObject({ ready: false, source: null, connected: false });
    // A refusal is never mistaken for a connection, not even for a moment.
    expect(lines.some((l) => l.msg === "connected to control plane")).toBe(false);
    expect(JSON.stringify(lines)).not.toContain("not-the-token");
  });

  it("lets the control plane compress the stream only with SYNC_COMPRESSION", async () => {
    const plain = await setup();
    await eventually(() => (plain.cp.subscriptionEncodings.length > 0 ? true : undefined));
    expect(plain.cp.subscriptionEncodings[0]).not.toContain("gzip");
    const gzip = await setup(undefined, { syncCompression: true });
    await eventually(() => (gzip.cp.subscriptionEncodings.length > 0 ? true : undefined));
    expect(gzip.cp.subscriptionEncodings[0]).toBe("gzip");
    // And the compressed stream works: the snapshot's key is served.
    await eventually(async () => ((await gzip.readyz()).ready === true ? true : undefined));
  });

  it("resubscribes from the applied revision on a gap, without applying past it", async () => {
    const { cp, gw, lines } = await setup();
    await eventually(() => (gw.context.syncState.ready && cp.openStreams === 1 ? true : undefined));
    sendBatch(cp, [upsertChange(5, makeKey().upsert)]);
    await eventually(() => (cp.subscriptions.length >= 2 ? true : undefined));
    expect(cp.subscriptions[1]?.lastRevision).toBe(3n);
    expect(cp.subscriptions[1]?.gatewayId).toBe(cp.subscriptions[0]?.gatewayId);
    expect(gw.context.syncState.appliedRevision).toBe(3);
    expect(lines.some((l) => l.msg === "gap in the key change stream; resubscribing from the applied revision")).toBe(
      true,
    );
  });

  it("acknowledges an apply error, keeps the old state and resubscribes", async () => {
    const { cp, gw } = await setup();
    await eventually(() => (gw.context.syncState.ready && cp.openStreams === 1 ? true : undefined));
    const good = makeKey();
    const broken = { ...makeKey().upsert, keyHash: new Uint8Array(3) };
    sendBatch(cp, [upsertChange(4, good.upsert), upsertChange(5, broken)]);
    const ack = await eventually(() => cp.acks.find((a) => a.error !== ""));
    expect(ack.revision).toBe(3n);
    expect(ack.error).toContain("key_hash");
    await eventually(() => (cp.subscriptions.length >= 2 ? true : undefined));
    expect(gw.context.syncState.appliedRevision).toBe(3);
    expect(gw.context.keyIndex.getById(good.upsert.id)).toBeUndefined();
  });

  it("reports the server revision and lag from heartbeats", async () => {
    const { cp, gw, readyz } = await setup();
    await eventually(() => (gw.context.syncState.ready && cp.openStreams === 1 ? true : undefined));
    cp.pushEvent({ case: "heartbeat", value: create(HeartbeatSchema, { revision: 7n }) });
    const body = await eventually(async () => {
      const r = await readyz();
      return r.server_revision === 7 ? r : undefined;
    });
    expect(body).toMatchObject({ ready: true, connected: true, applied_revision: 3, lag: 4 });
    expect(body.seconds_since_contact).toBeGreaterThanOrEqual(0);
  });
});
