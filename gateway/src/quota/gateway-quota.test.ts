import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "@tollgate/shared";
import { LogWriter } from "../db/request-log-writer.js";
import { openStore, type GatewayStore } from "../db/store.js";
import { tempDir } from "@tollgate/testkit";
import { GatewayQuota } from "./gateway-quota.js";
import type { OutboxRecord } from "./usage-outbox.js";

const logger = createLogger({ name: "test", level: "silent" });

describe("GatewayQuota's usage outbox on the log writer", () => {
  let dir: ReturnType<typeof tempDir>;
  let store: GatewayStore;
  let writer: LogWriter;
  afterEach(async () => {
    await writer.close();
    store.close();
    dir.remove();
  });

  const rows = () =>
    (
      store.db.prepare("SELECT seq, records FROM usage_outbox ORDER BY seq").all() as Array<{
        seq: number;
        records: string;
      }>
    ).map((r) => ({
      seq: r.seq,
      records: JSON.parse(r.records) as OutboxRecord[],
    }));

  /** A store, a log writer batching every 5 ms and the quota on them; `use` settles one request. */
  const start = () => {
    dir = tempDir();
    store = openStore(dir.path);
    writer = new LogWriter(store, logger, { flushIntervalMs: 5 });
    const quota = new GatewayQuota({ store, logWriter: writer, clock: { now: () => Date.now() }, logger });
    const use = () => {
      quota.outbox.add({ ...sample, atMs: Date.now() });
      quota.touch();
    };
    return { quota, use };
  };

  it("writes at most one outbox row per 100 ms however often batches go, and loses no usage; flush takes everything", async () => {
    dir = tempDir();
    store = openStore(dir.path);
    writer = new LogWriter(store, logger, { flushIntervalMs: 5 });
    // The cadence reads this clock only: the test steps it instead of waiting on the wall clock.
    let now = 1_700_000_000_000;
    const scheduler = { now: () => now, later: () => undefined };
    const quota = new GatewayQuota({ store, logWriter: writer, clock: scheduler, logger, scheduler });
    let sent = 0;
    // 300 ms of requests, one every 2 ms, each with its usage, and a log batch after each.
    for (let i = 0; i < 150; i++) {
      now += 2;
      quota.outbox.add({
        keyId: "key_1",
        userId: "user_1",
        teamId: "team_1",
        atMs: now,
        inputTokens: 3,
        outputTokens: 2,
        costMicroUsd: 7,
      });
      quota.touch();
      sent++;
      // Resolves once a batch sent after this request's usage is written.
      await writer.setMeta("test_tick", String(i));
    }
    const before = rows().length;
    // 300 ms at one row per 100 ms at most (plus the first): never one per 5 ms batch.
    expect(before).toBeGreaterThanOrEqual(1);
    expect(before).toBeLessThanOrEqual(5);
    await writer.flush();
    const all = rows();
    const total = all
      .flatMap((r) => r.records)
      .reduce(
        (a, r) => ({
          requests: a.requests + r.requests,
          input: a.input + r.inputTokens,
          cost: a.cost + r.costMicroUsd,
        }),
        { requests: 0, input: 0, cost: 0 },
      );
    expect(total).toEqual({ requests: sent, input: 3 * sent, cost: 7 * sent });
  });

  it("close() writes the usage the cadence held back", async () => {
    const { use } = start();
    use();
    await expect.poll(() => rows().length, { timeout: 2_000 }).toBe(1);
    use(); // within 100 ms of the first row: held back
    await new Promise((r) => setTimeout(r, 10)); // a batch goes, without the outbox
    await writer.close();
    expect(
      rows()
        .flatMap((r) => r.records)
        .reduce((a, r) => a + r.requests, 0),
    ).toBe(2);
  });

  it("writes the last usage on its own after the quiet period, without another request", async () => {
    dir = tempDir();
    store = openStore(dir.path);
    writer = new LogWriter(store, logger, { flushIntervalMs: 5 });
    const quota = new GatewayQuota({ store, logWriter: writer, clock: { now: () => Date.now() }, logger });
    quota.outbox.add({
      keyId: "key_1",
      userId: "user_1",
      teamId: "team_1",
      atMs: Date.now(),
      inputTokens: 1,
      outputTokens: 1,
      costMicroUsd: 1,
    });
    quota.touch();
    await expect.poll(() => rows().length, { timeout: 2_000 }).toBe(1);
    quota.outbox.add({
      keyId: "key_1",
      userId: "user_1",
      teamId: "team_1",
      atMs: Date.now(),
      inputTokens: 1,
      outputTokens: 1,
      costMicroUsd: 1,
    });
    quota.touch(); // within 100 ms of the first row: it waits, then goes by itself
    await expect.poll(() => rows().length, { timeout: 2_000 }).toBe(2);
    expect(quota.outbox.hasPending).toBe(false);
  });

  it("the log batches carry the journal checkpoint: a restart replays only what no batch committed, once", async () => {
    const { quota, use } = start();
    for (let i = 0; i < 30; i++) use();
    await writer.flush();
    // Journal only: the batch cadence holds these back, then the process dies (no close).
    for (let i = 0; i < 12; i++) quota.outbox.add({ ...sample, atMs: Date.now() });
    const count = () =>
      rows()
        .flatMap((r) => r.records)
        .reduce((a, r) => a + r.requests, 0);
    expect(count()).toBe(30);
    // The restarted gateway, on the same files, while the dead one's handles are simply abandoned.
    const restart = async () => {
      const again = openStore(dir.path);
      const againWriter = new LogWriter(again, logger);
      const againQuota = new GatewayQuota({
        store: again,
        logWriter: againWriter,
        clock: { now: () => Date.now() },
        logger,
      });
      const counted = count();
      await againWriter.close();
      againQuota.outbox.close();
      again.close();
      return counted;
    };
    expect(await restart()).toBe(42);
    expect(await restart()).toBe(42);
  });
});

const sample = {
  keyId: "key_1",
  userId: "user_1",
  teamId: "team_1",
  atMs: 0,
  inputTokens: 2,
  outputTokens: 1,
  costMicroUsd: 1,
};
