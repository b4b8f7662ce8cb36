import { createLogger } from "@tollgate/shared";
import { FakeControlPlane, makeKey, tempDir } from "@tollgate/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../test/test-config.js";
import { LogRetention } from "../background/log-retention.js";
import { LogWriter } from "../db/request-log-writer.js";
import { openStore } from "../db/store.js";
import { createGateway, type Gateway } from "../index.js";
import { DenialAggregator, OTHER_ADDRESSES, type DenialSummary } from "./denial-aggregator.js";

const silent = createLogger({ name: "test", level: "silent" });

describe("DenialAggregator", () => {
  it("lets the first denial of each address and minute write rows and summarizes the rest when the minute ends", () => {
    let now = Date.parse("2026-12-03T08:00:10Z");
    const written: DenialSummary[] = [];
    const agg = new DenialAggregator({
      now: () => now,
      write: (s) => written.push(...s),
      maxAddresses: 3,
      tick: false,
    });
    const first = Array.from({ length: 1000 }, (_, i) =>
      agg.admit("203.0.113.9", i % 2 ? "auth_unknown" : "client_blocked"),
    );
    expect(first.filter(Boolean).length).toBe(1);
    // Past the address bound, new addresses share one count instead of growing memory.
    for (let i = 0; i < 10; i++) agg.admit(`198.51.100.${i}`, "auth_malformed");
    expect(written).toEqual([]);
    now += 60_000;
    expect(agg.admit("203.0.113.9", "auth_unknown")).toBe(true);
    expect(written).toEqual([
      {
        ip: "203.0.113.9",
        windowStart: "2026-12-03T08:00:00.000Z",
        suppressed: 999,
        reasons: { auth_unknown: 500, client_blocked: 499 },
      },
      { ip: OTHER_ADDRESSES, windowStart: "2026-12-03T08:00:00.000Z", suppressed: 8, reasons: { auth_malformed: 8 } },
    ]);
    agg.close();
  });
});

describe("bad-key floods and the gateway's disk", () => {
  const dir = tempDir();
  const key = makeKey();
  const cp = new FakeControlPlane([key.upsert], 1);
  let gw: Gateway;
  let base = "";

  beforeAll(async () => {
    await cp.start();
    gw = createGateway(testConfig(dir.path, cp.url, cp.token, { logLevel: "silent" }), { logger: silent });
    base = `http://127.0.0.1:${(await gw.start()).port}`;
    for (let i = 0; i < 500 && !gw.context.syncState.ready; i++) await new Promise((r) => setTimeout(r, 20));
  });

  afterAll(async () => {
    await gw?.stop();
    await cp.stop();
    dir.remove();
  });

  it("200 bad-key requests from one address write a bounded number of rows, not one each", async () => {
    for (let i = 0; i < 200; i++) {
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer sk-not-a-real-key-${i}`, "content-type": "application/json" },
        body: "{}",
      });
      expect([401, 429]).toContain(res.status);
      await res.arrayBuffer();
    }
    await gw.context.logWriter.flush();
    const requests = gw.context.db.requestLog.list(10_000);
    const audits = gw.context.db.audit
      .list(10_000)
      .filter((r) => r.event === "auth_denied" || r.event === "client_blocked");
    expect(requests.length).toBeLessThanOrEqual(2);
    expect(audits.length).toBeLessThanOrEqual(2);
  });
});

describe("denial summaries at a graceful stop", () => {
  it("writes the summary of the window still counted in memory when the gateway stops", async () => {
    const dir = tempDir();
    const key = makeKey();
    const cp = new FakeControlPlane([key.upsert], 1);
    await cp.start();
    const gw = createGateway(testConfig(dir.path, cp.url, cp.token, { logLevel: "silent" }), { logger: silent });
    const base = `http://127.0.0.1:${(await gw.start()).port}`;
    for (let i = 0; i < 500 && !gw.context.syncState.ready; i++) await new Promise((r) => setTimeout(r, 20));
    const N = 25;
    for (let i = 0; i < N; i++) {
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer sk-not-a-real-key-${i}`, "content-type": "application/json" },
        body: "{}",
      });
      await res.arrayBuffer();
    }
    await gw.stop();
    await cp.stop();
    const store = openStore(dir.path);
    const summaries = store.audit.list(10_000).filter((r) => r.event === "auth_denied_summary");
    // client_blocked rows record the block itself, not a denial.
    const firsts = store.audit.list(10_000).filter((r) => r.event === "auth_denied");
    const counted = summaries.reduce((n, r) => n + (r.detail as { denials: number }).denials, 0);
    store.close();
    dir.remove();
    // Every denial is in a row: the first of the window its own, the rest in the summary.
    expect(firsts.length + counted).toBe(N);
  });
});

describe("LOG_RETENTION", () => {
  it("deletes request-log and audit rows older than the retention and keeps the rest", async () => {
    const dir = tempDir();
    const store = openStore(dir.path);
    const writer = new LogWriter(store, silent);
    const now = Date.parse("2026-12-03T08:00:00Z");
    const row = (at: string, requestId: string) => ({
      at,
      requestId,
      keyId: null,
      model: null,
      provider: null,
      status: 401,
      promptTokens: null,
      completionTokens: null,
      totalTokens: null,
      cacheReadTokens: null,
      cacheWriteTokens: null,
      attempts: null,
      latencyMs: 1,
      stream: false,
      error: "auth_unknown",
      metadata: null,
      ephemeral: false,
      ephemeralTokenId: null,
      costUsd: null,
    });
    for (let i = 0; i < 30; i++) writer.request(row("2026-10-01T00:00:00.000Z", `old_${i}`));
    writer.request(row("2026-12-02T00:00:00.000Z", "recent"));
    writer.audit({ at: "2026-10-01T00:00:00.000Z", event: "auth_denied", keyId: null, revision: null, detail: {} });
    writer.audit({ at: "2026-12-02T00:00:00.000Z", event: "auth_denied", keyId: null, revision: null, detail: {} });
    await writer.flush();
    const retention = new LogRetention({
      logWriter: writer,
      db: store.db,
      logger: silent,
      now: () => now,
      retentionMs: 30 * 86_400_000,
    });
    await retention.runOnce();
    expect(store.requestLog.list().map((r) => r.requestId)).toEqual(["recent"]);
    expect(store.audit.list().map((r) => r.at)).toEqual(["2026-12-02T00:00:00.000Z"]);
    await writer.close();
    store.close();
    dir.remove();
  });
});
