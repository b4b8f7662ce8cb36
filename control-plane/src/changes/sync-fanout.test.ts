import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { sql } from "kysely";
import { openTestDatabase } from "../../test/test-database.js";
import { insertGatewayToken } from "../repositories/gateway-tokens.js";
import { upsertConnectedGateway } from "../repositories/gateways.js";
import { appendChange, appendChanges } from "../repositories/change-log.js";
import { ensureDefaultOrg } from "../repositories/orgs.js";
import { AckWriter } from "./ack-writer.js";
import { ChangeFeed } from "./change-feed.js";
import { ChangeNotifier } from "./notifier.js";

let database: Awaited<ReturnType<typeof openTestDatabase>>;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(async () => {
  await database.cleanup();
});

/** Rows for connected gateways of the default organization, under a new token; returns the organization. */
async function connectedGateways(ids: string[]): Promise<string> {
  const db = database.db;
  const orgId = await ensureDefaultOrg(db);
  const token = await insertGatewayToken(db, {
    id: `gwt_${randomBytes(6).toString("hex")}`,
    orgId,
    name: ids[0]!,
    hash: randomBytes(32),
    prefix: "tgw_test",
  });
  for (const id of ids)
    await upsertConnectedGateway(db, { id, orgId, tokenId: token.id, name: id, version: "t", remoteAddress: null });
  return orgId;
}

describe("AckWriter", () => {
  it("shows a successful acknowledgement to receipts as it arrives, before its UPDATE, for its organization only", async () => {
    const acks = new ChangeNotifier();
    const writer = new AckWriter(database.db, { acks, notifyReplicas: false });
    const before = acks.version("org_a");
    const done = writer.record({ id: "gw_1", orgId: "org_a", revision: 7, error: null });
    // The UPDATE starts on the next turn of the event loop: nothing is written yet.
    expect(writer.appliedRevision("gw_1", "org_a")).toBe(7);
    expect(acks.version("org_a")).toBeGreaterThan(before);
    // The same gateway id acknowledged with another organization's token counts for nothing there.
    expect(writer.appliedRevision("gw_1", "org_b")).toBe(0);
    // An error report does not move the applied revision.
    const failed = writer.record({ id: "gw_1", orgId: "org_a", revision: 8, error: "could not apply" });
    expect(writer.appliedRevision("gw_1", "org_a")).toBe(7);
    // No such gateway row: the write finds nothing, and says so.
    expect(await done).toBe(false);
    expect(await failed).toBe(false);
  });
  it("wakes receipts for another replica's acknowledgement NOTIFY, and ignores its own echo", () => {
    const acks = new ChangeNotifier();
    const writer = new AckWriter(database.db, { acks, notifyReplicas: true });
    const wakes = acks.version("org_a");
    // Nothing of ours is unheard: another replica's.
    writer.acksWrittenElsewhere("org_a");
    expect(writer.remoteVersion("org_a")).toBe(1);
    expect(acks.version("org_a")).toBeGreaterThan(wakes);
    expect(writer.remoteVersion("org_b")).toBe(0);
  });

  it("takes the first NOTIFY after its own acknowledgement write as its echo, the next as another replica's", async () => {
    const db = database.db;
    const orgId = await connectedGateways(["gw_echo"]);
    const writer = new AckWriter(db, { acks: new ChangeNotifier(), notifyReplicas: true });
    expect(await writer.record({ id: "gw_echo", orgId, revision: 3, error: null })).toBe(true);
    writer.acksWrittenElsewhere(orgId); // our own NOTIFY, delivered back
    expect(writer.remoteVersion(orgId)).toBe(0);
    writer.acksWrittenElsewhere(orgId); // nothing of ours is left unheard
    expect(writer.remoteVersion(orgId)).toBe(1);
  });

  it("answers a heartbeat (the revision already written) at once and writes the fleet's liveness in one later statement", async () => {
    const db = database.db;
    const orgId = await connectedGateways(["gw_hb1", "gw_hb2"]);
    const row = async (id: string) =>
      (
        await sql<{ applied_revision: string | number; last_error: string | null; last_seen_at: Date }>`
          select applied_revision, last_error, last_seen_at from gateways where id = ${id}`.execute(db)
      ).rows[0]!;
    const acks = new ChangeNotifier();
    const writer = new AckWriter(db, { acks, notifyReplicas: false, heartbeatFlushMs: 60_000 });

    // A revision first: written in full.
    expect(await writer.record({ id: "gw_hb1", orgId, revision: 5, error: null })).toBe(true);
    expect(await writer.record({ id: "gw_hb2", orgId, revision: 5, error: null })).toBe(true);
    expect(Number((await row("gw_hb1")).applied_revision)).toBe(5);
    const seenBefore = (await row("gw_hb1")).last_seen_at.getTime();

    // The same revision again: a heartbeat, answered without a write.
    const notified = acks.version(orgId);
    expect(await writer.record({ id: "gw_hb1", orgId, revision: 5, error: null })).toBe(true);
    expect(await writer.record({ id: "gw_hb2", orgId, revision: 5, error: null })).toBe(true);
    expect(acks.version(orgId)).toBe(notified);
    expect((await row("gw_hb1")).last_seen_at.getTime()).toBe(seenBefore);
    // Another organization's token never passes for a heartbeat of this gateway.
    expect(await writer.record({ id: "gw_hb1", orgId: "org_other", revision: 5, error: null })).toBe(false);

    // drain() (as the flush timer would) writes both gateways' liveness.
    await writer.drain();
    expect((await row("gw_hb1")).last_seen_at.getTime()).toBeGreaterThan(seenBefore);
    expect((await row("gw_hb2")).last_seen_at.getTime()).toBeGreaterThan(seenBefore);

    // After an error report, the next success at that revision is written in full: it clears last_error.
    expect(await writer.record({ id: "gw_hb1", orgId, revision: 6, error: "disk full" })).toBe(true);
    expect((await row("gw_hb1")).last_error).toBe("disk full");
    expect(await writer.record({ id: "gw_hb1", orgId, revision: 5, error: null })).toBe(true);
    expect((await row("gw_hb1")).last_error).toBeNull();
    expect(Number((await row("gw_hb1")).applied_revision)).toBe(5);
  });
});

/** A feed over the test database whose clock the test moves (`clock.now`), with a 5 s freshness window. */
async function feedWithClock(start: number) {
  const db = database.db;
  const orgId = await ensureDefaultOrg(db);
  const notifier = new ChangeNotifier();
  const clock = { now: start };
  const feed = new ChangeFeed(
    db,
    (o) => notifier.version(o),
    5_000,
    20_000,
    () => clock.now,
  );
  return { db, orgId, notifier, feed, clock };
}

describe("ChangeFeed", () => {
  it("answers idle re-reads from memory while nothing was notified and the last read is recent, then reads the log again", async () => {
    const { db, orgId, notifier, feed, clock } = await feedWithClock(1_000_000);
    const base = (await feed.read(orgId, 0, 100)).at(-1)?.revision ?? 0;
    const cursor = (await feed.read(orgId, base, 100)).at(-1)?.revision ?? base;

    // Committed without a notification (as if another replica's NOTIFY were lost).
    const first = await appendChange(db, orgId, {
      kind: "key_delete",
      resourceId: "ak_feed1",
      payload: { id: "ak_feed1" },
    });
    clock.now += 1_000;
    expect(await feed.read(orgId, cursor, 100)).toEqual([]); // from memory: the last read is 1 s old
    // A notification makes the next reader go to the log.
    notifier.notify(orgId);
    expect((await feed.read(orgId, cursor, 100)).map((e) => e.revision)).toEqual([first]);

    // Lost again; once the last read is older than the interval, an idle re-read finds it (the safety net).
    const second = await appendChange(db, orgId, {
      kind: "key_delete",
      resourceId: "ak_feed2",
      payload: { id: "ak_feed2" },
    });
    clock.now += 4_999;
    expect(await feed.read(orgId, first, 100)).toEqual([]);
    clock.now += 1;
    expect((await feed.read(orgId, first, 100)).map((e) => e.revision)).toEqual([second]);
  });
  it("reads on at once after a full page: a burst larger than one read is never held back for an interval", async () => {
    const { db, orgId, notifier, feed } = await feedWithClock(2_000_000);
    let cursor = 0;
    for (let got = await feed.read(orgId, 0, 10_000); got.length > 0; got = await feed.read(orgId, cursor, 10_000))
      cursor = got.at(-1)!.revision;
    const ids = Array.from({ length: 6_001 }, (_, i) => `ak_burst${i}`);
    const last = await appendChanges(
      db,
      orgId,
      ids.map((id) => ({ kind: "key_delete" as const, resourceId: id, payload: { id } })),
    );
    notifier.notify(orgId);
    // One notification, no time passing: every entry is read, page after page.
    let seen = 0;
    for (
      let got = await feed.read(orgId, cursor, 10_000);
      got.length > 0;
      got = await feed.read(orgId, cursor, 10_000)
    ) {
      seen += got.length;
      cursor = got.at(-1)!.revision;
    }
    expect(seen).toBe(6_001);
    expect(cursor).toBe(last);
  });
});
