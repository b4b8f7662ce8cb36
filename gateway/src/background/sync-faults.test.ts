import { afterEach, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { ChangeBatchSchema, HeartbeatSchema } from "@tollgate/shared";
import { createGateway, type GatewayConfig } from "../index.js";
import type { Clock } from "../clock.js";
import {
  capturedLogger,
  deleteChange,
  endpoints,
  eventually,
  FakeControlPlane,
  type FakeControlPlaneOptions,
  makeKey,
  manualClock,
  tempDir,
  upsertChange,
} from "@tollgate/testkit";
import { testConfig } from "../../test/test-config.js";

const MINUTE = 60_000;

describe("sync under faults", () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(
    opts: { config?: Partial<GatewayConfig>; clock?: Clock; cp?: FakeControlPlaneOptions; dataDir?: string } = {},
  ) {
    let dataDir = opts.dataDir;
    if (!dataDir) {
      const dir = tempDir();
      cleanups.push(() => dir.remove());
      dataDir = dir.path;
    }
    const key = makeKey();
    const cp = new FakeControlPlane([key.upsert], 3, undefined, undefined, opts.cp);
    await cp.start();
    cleanups.push(() => cp.stop());
    const { logger, lines } = capturedLogger();
    const gw = createGateway(testConfig(dataDir, cp.url, cp.token, opts.config), {
      logger,
      ...(opts.clock ? { clock: opts.clock } : {}),
      sync: { baseDelayMs: 10, maxDelayMs: 50 },
    });
    const api = endpoints(await gw.start());
    cleanups.push(() => gw.stop());
    await eventually(() => (gw.context.syncState.appliedRevision === 3 && cp.openStreams === 1 ? true : undefined));
    return { cp, gw, key, lines, api, dataDir };
  }

  describe("MAX_STALENESS", () => {
    it("fails closed after MAX_STALENESS without contact, and serves again on the next contact", async () => {
      const clock = manualClock();
      const { cp, key, api, lines } = await setup({ clock, config: { maxStalenessMs: 10 * MINUTE } });
      expect((await api.readyz()).body).toMatchObject({ ready: true, reason: null, max_staleness_seconds: 600 });

      clock.advance(9 * MINUTE);
      expect((await api.readyz()).status).toBe(200);
      expect((await api.chat(key.secret)).status).toBe(200);

      clock.advance(2 * MINUTE);
      const ready = await api.readyz();
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({
        ready: false,
        reason: "stale",
        seconds_since_contact: 660,
        source: "control_plane",
        keys: 1,
      });
      const res = await api.chat(key.secret);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({
        error: {
          message:
            "This gateway has had no contact with its control plane for 11m0s, longer than its MAX_STALENESS of 10m0s, so it refuses requests rather than trust keys that may have been revoked since. Retry later or use another gateway.",
          type: "server_error",
          param: null,
          code: "gateway_stale",
        },
      });
      expect(await api.metrics()).toMatch(/^tollgate_gateway_sync_stale 1$/m);
      expect(
        lines.some(
          (l) => l.level === 50 && String(l.msg).includes("longer than MAX_STALENESS (10m0s): failing closed"),
        ),
      ).toBe(true);

      // Any stream event is contact.
      cp.pushEvent({ case: "heartbeat", value: create(HeartbeatSchema, { revision: 3n }) });
      await eventually(async () => ((await api.readyz()).status === 200 ? true : undefined));
      expect((await api.chat(key.secret)).status).toBe(200);
      expect(await api.metrics()).toMatch(/^tollgate_gateway_sync_stale 0$/m);
      expect(lines.some((l) => l.msg === "contact with the control plane restored: serving requests again")).toBe(true);
    });

    it("counts a successful acknowledgement as contact", async () => {
      const clock = manualClock();
      const { api } = await setup({ clock, config: { maxStalenessMs: 10 * MINUTE, syncHeartbeatIntervalMs: 20 } });
      clock.advance(11 * MINUTE);
      // The next heartbeat acknowledgement brings the gateway back.
      await eventually(async () => ((await api.readyz()).status === 200 ? true : undefined));
      expect((await api.readyz()).body).toMatchObject({ reason: null });
    });

    it("never fails closed without MAX_STALENESS", async () => {
      const clock = manualClock();
      const { cp, key, api } = await setup({ clock });
      await cp.stop();
      clock.advance(30 * 24 * 60 * MINUTE);
      expect((await api.readyz()).body).toMatchObject({ ready: true, reason: null, max_staleness_seconds: null });
      expect((await api.chat(key.secret)).status).toBe(200);
    });

    it("counts from the last contact before a restart", async () => {
      const clock = manualClock();
      const first = await setup({ clock, config: { maxStalenessMs: 10 * MINUTE } });
      await first.gw.stop();
      await first.cp.stop();

      const restart = async (afterMs: number) => {
        clock.advance(afterMs);
        const gw = createGateway(
          testConfig(first.dataDir, first.cp.url, first.cp.token, { maxStalenessMs: 10 * MINUTE }),
          {
            logger: capturedLogger().logger,
            clock,
            sync: { baseDelayMs: 10, maxDelayMs: 50 },
          },
        );
        const api = endpoints(await gw.start());
        try {
          return { ready: await api.readyz(), chat: (await api.chat(first.key.secret)).status };
        } finally {
          await gw.stop();
        }
      };
      const soon = await restart(4 * MINUTE);
      expect(soon.ready.status).toBe(200);
      expect(soon.ready.body).toMatchObject({ source: "cache", seconds_since_contact: 240 });
      expect(soon.chat).toBe(200);
      const late = await restart(7 * MINUTE);
      expect(late.ready.body).toMatchObject({
        ready: false,
        reason: "stale",
        source: "cache",
        seconds_since_contact: 660,
      });
      expect(late.chat).toBe(503);
    });
  });

  it("shows staleness in /readyz and /metrics: seconds since contact and lag in revisions", async () => {
    const clock = manualClock();
    const { cp, api } = await setup({ clock });
    cp.pushEvent({ case: "heartbeat", value: create(HeartbeatSchema, { revision: 8n }) });
    await eventually(async () => ((await api.readyz()).body.server_revision === 8 ? true : undefined));
    clock.advance(42_000);
    expect((await api.readyz()).body).toMatchObject({
      applied_revision: 3,
      server_revision: 8,
      lag: 5,
      seconds_since_contact: 42,
    });
    const metrics = await api.metrics();
    expect(metrics).toMatch(/^tollgate_gateway_sync_lag_revisions 5$/m);
    expect(metrics).toMatch(/^tollgate_gateway_sync_seconds_since_contact 42$/m);
    expect(metrics).toMatch(
      new RegExp(`^tollgate_gateway_sync_last_contact_timestamp_seconds ${(clock.now() - 42_000) / 1000}$`, "m"),
    );
  });

  describe("heartbeats", () => {
    it("acknowledges the applied revision every SYNC_HEARTBEAT_INTERVAL while connected, one call at a time", async () => {
      const { cp, api } = await setup({ config: { syncHeartbeatIntervalMs: 10 }, cp: { ackDelayMs: 50 } });
      await eventually(() => (cp.acks.length >= 6 ? true : undefined));
      expect(
        cp.acks.every((a) => a.revision === 3n && a.error === "" && a.gatewayId === cp.subscriptions[0]?.gatewayId),
      ).toBe(true);
      expect(cp.maxConcurrentAcks).toBe(1);
      expect(await api.metrics()).toMatch(/^tollgate_gateway_sync_heartbeats_total\{result="ok"\} [1-9]\d*$/m);
    });

    it("sends none to a control plane that takes the open stream as liveness: only applied revisions", async () => {
      const { cp, api } = await setup({ config: { syncHeartbeatIntervalMs: 10 }, cp: { streamLiveness: true } });
      // Each change is acknowledged once; a heartbeat every 10 ms would show up between them.
      for (const revision of [4, 5, 6]) {
        cp.push([upsertChange(revision, makeKey().upsert)]);
        await eventually(() => (cp.acks.some((a) => a.revision === BigInt(revision)) ? true : undefined));
        await new Promise((r) => setTimeout(r, 30));
      }
      expect(cp.acks.map((a) => Number(a.revision))).toEqual([3, 4, 5, 6]);
      expect(await api.metrics()).not.toMatch(/^tollgate_gateway_sync_heartbeats_total\{result="ok"\}/m);
    });
  });

  describe("acknowledgement stream", () => {
    it("sends acknowledgements as messages of one call to a control plane that serves it", async () => {
      const { cp } = await setup({ cp: { streamLiveness: true, acknowledgeStream: true } });
      for (const revision of [4, 5]) {
        cp.push([upsertChange(revision, makeKey().upsert)]);
        await eventually(() => (cp.acks.some((a) => a.revision === BigInt(revision)) ? true : undefined));
      }
      expect(cp.acks.map((a) => Number(a.revision))).toEqual([3, 4, 5]);
      expect(cp.streamedAcks).toBe(3);
      expect(cp.unaryAcks).toBe(0);
    });

    it("falls back to single calls, and says its applied revision again, when the call fails", async () => {
      const { cp } = await setup({ cp: { streamLiveness: true, acknowledgeStream: "fail" } });
      // The snapshot's acknowledgement was lost with the failed call: it comes again as a single call.
      await eventually(() => (cp.acks.some((a) => a.revision === 3n) ? true : undefined));
      cp.push([upsertChange(4, makeKey().upsert)]);
      await eventually(() => (cp.acks.some((a) => a.revision === 4n) ? true : undefined));
      expect(cp.streamedAcks).toBe(0);
      expect(cp.unaryAcks).toBeGreaterThanOrEqual(2);
    });
  });

  describe("resume", () => {
    it("resubscribes with the applied revision and org after a dropped connection, and applies each revision once", async () => {
      const { cp, gw } = await setup({ cp: { resume: true, replayOverlap: 2 } });
      const a = makeKey();
      const b = makeKey();
      cp.push([upsertChange(4, a.upsert)]);
      cp.push([upsertChange(5, b.upsert)]);
      await eventually(() => (gw.context.syncState.appliedRevision === 5 ? true : undefined));

      // The connection drops; meanwhile revision 6 commits.
      cp.holdSubscriptions();
      cp.dropConnections();
      await eventually(() => (cp.subscriptions.length >= 2 ? true : undefined));
      const c = makeKey();
      cp.record([deleteChange(6, a.upsert.id), upsertChange(7, c.upsert)]);
      cp.releaseSubscriptions();
      await eventually(() => (gw.context.syncState.appliedRevision === 7 ? true : undefined));

      const resubscribe = cp.subscriptions[1]!;
      expect(resubscribe).toMatchObject({
        lastRevision: 5n,
        orgId: "org_test",
        gatewayId: cp.subscriptions[0]!.gatewayId,
      });

      // Another drop: the server replays 6 and 7 again, and a live batch repeats 7.
      cp.dropConnections();
      await eventually(() => (cp.subscriptions.length >= 3 && cp.openStreams === 1 ? true : undefined));
      expect(cp.subscriptions[2]?.lastRevision).toBe(7n);
      const d = makeKey();
      cp.pushEvent({
        case: "changeBatch",
        value: create(ChangeBatchSchema, { changes: [upsertChange(7, c.upsert), upsertChange(8, d.upsert)] }),
      });
      await eventually(() => (gw.context.syncState.appliedRevision === 8 ? true : undefined));

      const perRevision = new Map<number, number>();
      for (const row of gw.context.db.audit.list()) {
        if (row.event !== "key_upsert" && row.event !== "key_delete") continue;
        if (row.revision !== null && row.revision > 3)
          perRevision.set(row.revision, (perRevision.get(row.revision) ?? 0) + 1);
      }
      expect(Object.fromEntries(perRevision)).toEqual({ 4: 1, 5: 1, 6: 1, 7: 1, 8: 1 });
      expect(gw.context.keyIndex.getById(a.upsert.id)).toBeUndefined();
      expect(gw.context.keyIndex.getById(d.upsert.id)?.id).toBe(d.upsert.id);
      // No snapshot was needed for any of it.
      expect(gw.context.db.audit.list().filter((r) => r.event === "snapshot_applied")).toHaveLength(1);
    });
  });
});
