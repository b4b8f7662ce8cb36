import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SnapshotReason, type SubscribeResponse } from "@tollgate/shared";
import { startTestControlPlane, type TestControlPlane } from "../../test/test-control-plane.js";
import type { AppContext } from "../context.js";
import { TEST_MASTER_KEY } from "../../test/test-config.js";
import { currentRevision } from "../repositories/orgs.js";
import { snapshotEvents } from "./snapshot-stream.js";

let test: TestControlPlane;
let app: AppContext;
let userId: string;

async function call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(test.base + path, {
    method,
    headers: { authorization: `Bearer ${TEST_MASTER_KEY}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

beforeAll(async () => {
  test = await startTestControlPlane();
  app = test.cp.context!;
  userId = (await call("POST", "/internal/users", { external_id: "pages@example.com" })).id as string;
});

afterAll(async () => {
  await test?.stop();
});

describe("snapshotEvents", () => {
  it("sends a snapshot of many pages as one consistent cut while keys change during the read", async () => {
    const orgId = app.defaultOrgId;
    const created: { id: string; name: string }[] = [];
    for (let i = 0; i < 11; i++) {
      const key = await call("POST", "/internal/api-keys", { name: `page-${i}`, user_id: userId });
      created.push({ id: key.id as string, name: `page-${i}` });
    }
    const revisionBefore = await currentRevision(app.db, orgId);

    // After the revision is read, add a key and rename one; after the first page, delete one not read yet.
    const sorted = [...created].sort((a, b) => (a.id < b.id ? -1 : 1));
    const renamed = sorted[7]!;
    const deleted = sorted[9]!;
    const writesAt = new Map<number, () => Promise<unknown>>([
      [
        0,
        async () => {
          await call("POST", "/internal/api-keys", { name: "added-mid-read", user_id: userId });
          await call("PATCH", `/internal/api-keys/${renamed.id}`, { name: "renamed-mid-read" });
        },
      ],
      [1, () => call("DELETE", `/internal/api-keys/${deleted.id}`)],
    ]);
    const writes: Promise<unknown>[] = [];
    const events: SubscribeResponse[] = [];
    const stream = snapshotEvents(app, orgId, SnapshotReason.NEW_GATEWAY, {
      pageSize: 3,
      afterPage: async (page) => {
        const write = writesAt.get(page);
        if (!write) return;
        writes.push(write());
        // PGlite is one connection, held by the snapshot's transaction: there the writes
        // wait for the read to end. On Postgres they commit while the read goes on.
        if (app.dbKind === "postgres") await writes.at(-1);
      },
    });
    let next = await stream.next();
    while (!next.done) {
      events.push(next.value);
      next = await stream.next();
    }
    await Promise.all(writes);

    // Every key as it stood before the writes, and the revision of that cut.
    const begin = events[0]!.event;
    expect(begin.case).toBe("snapshotBegin");
    if (begin.case !== "snapshotBegin") throw new Error("unreachable");
    expect(Number(begin.value.revision)).toBe(revisionBefore);
    expect(begin.value.keyCount).toBe(created.length);
    const chunks = events.filter((e) => e.event.case === "snapshotChunk");
    expect(chunks.length).toBe(Math.ceil(created.length / 3));
    const keys = chunks.flatMap((e) => (e.event.case === "snapshotChunk" ? e.event.value.keys : []));
    expect(keys.map((k) => ({ id: k.id, name: k.name }))).toEqual(sorted);
    const end = events.at(-1)!.event;
    expect(end.case === "snapshotEnd" && Number(end.value.revision)).toBe(revisionBefore);
    expect(next.value).toEqual({ revision: revisionBefore, keys: created.length });

    // The changes made during the read follow the cut in the change log: nothing is lost.
    const after = await app.changeFeed.read(orgId, revisionBefore, 100);
    expect(after.map((e) => e.revision)).toEqual([revisionBefore + 1, revisionBefore + 2, revisionBefore + 3]);
    // (On PGlite the queued writes may commit in another order.)
    expect(after.map((e) => e.kind).sort()).toEqual(["key_delete", "key_upsert", "key_upsert"]);
  });

  it("ends the read transaction when the stream stops early", async () => {
    const stream = snapshotEvents(app, app.defaultOrgId, SnapshotReason.NEW_GATEWAY, { pageSize: 2 });
    expect((await stream.next()).value).toMatchObject({ event: { case: "snapshotBegin" } });
    expect((await stream.next()).value).toMatchObject({ event: { case: "snapshotChunk" } });
    await stream.return({ revision: 0, keys: 0 });
    // The connection is free again: on PGlite (one connection) this would wait forever otherwise.
    const key = await call("POST", "/internal/api-keys", { name: "after-abandoned", user_id: userId });
    expect(key.id).toMatch(/^ak_/);
  });
});
