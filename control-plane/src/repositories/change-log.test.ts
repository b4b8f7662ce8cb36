import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@tollgate/shared";
import { ChangeNotifier } from "../changes/notifier.js";
import type { AppContext } from "../context.js";
import { createMetrics } from "../metrics.js";
import { openTestDatabase } from "../../test/test-database.js";
import { writeWithChanges } from "../changes/write-with-changes.js";
import { appendChange, readChanges } from "./change-log.js";
import { currentRevision, ensureDefaultOrg } from "./orgs.js";

let database: Awaited<ReturnType<typeof openTestDatabase>>;
let orgId: string;
let app: AppContext;

beforeAll(async () => {
  database = await openTestDatabase();
  orgId = await ensureDefaultOrg(database.db);
  app = {
    db: database.db,
    dbKind: database.kind,
    defaultOrgId: orgId,
    notifier: new ChangeNotifier(),
    metrics: createMetrics(),
    logger: createLogger({ name: "test", level: "silent" }),
    now: () => new Date(),
  } as unknown as AppContext;
});

afterAll(async () => {
  await database?.cleanup();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(`change log revisions (${process.env.DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("allocates consecutive revisions under concurrent writers, and readers never see a gap", async () => {
    const start = await currentRevision(database.db, orgId);
    const writers = 40;
    const seen: number[] = [];
    let cursor = start;
    let done = false;
    const reader = (async () => {
      while (!done || cursor < start + writers) {
        const entries = await readChanges(database.db, orgId, cursor, 1000);
        for (const e of entries) {
          // Each read continues exactly where the previous one stopped.
          expect(e.revision).toBe(cursor + 1);
          cursor = e.revision;
          seen.push(e.revision);
        }
        await sleep(1);
      }
    })();
    const revisions = await Promise.all(
      Array.from({ length: writers }, (_, i) =>
        writeWithChanges(app, orgId, async ({ emit }) => {
          await sleep(i % 3);
          emit({ kind: "key_delete", resourceId: `ak_${i}`, payload: { id: `ak_${i}` } });
        }).then((r) => r.revision!),
      ),
    );
    done = true;
    await reader;
    expect([...revisions].sort((a, b) => a - b)).toEqual(Array.from({ length: writers }, (_, i) => start + i + 1));
    expect(seen).toEqual(Array.from({ length: writers }, (_, i) => start + i + 1));
    expect(await currentRevision(database.db, orgId)).toBe(start + writers);
  });

  it("commits a later writer's revision only after the earlier one is visible", async () => {
    const start = await currentRevision(database.db, orgId);
    const slow = database.db.transaction().execute(async (trx) => {
      const rev = await appendChange(trx, orgId, {
        kind: "key_delete",
        resourceId: "ak_slow",
        payload: { id: "ak_slow" },
      });
      await sleep(150);
      return rev;
    });
    await sleep(30);
    // What a reader sees once the later writer has committed (read after its commit returned:
    // the order in which two connections' answers reach this process says nothing of commits).
    const fast = database.db
      .transaction()
      .execute(async (trx) =>
        appendChange(trx, orgId, { kind: "key_delete", resourceId: "ak_fast", payload: { id: "ak_fast" } }),
      )
      .then(async (rev) => ({
        rev,
        visible: (await readChanges(database.db, orgId, start, 10)).map((e) => e.revision),
      }));
    // While the slow writer holds the organization's row, the later revision is never
    // visible without the earlier one (Postgres shows neither; PGlite serialises the read).
    await sleep(60);
    const visible = (await readChanges(database.db, orgId, start, 10)).map((e) => e.revision);
    expect(visible).toEqual([start + 1, start + 2].slice(0, visible.length));
    const [a, b] = await Promise.all([slow, fast]);
    expect(a).toBe(start + 1);
    expect(b.rev).toBe(start + 2);
    expect(b.visible).toEqual([start + 1, start + 2]);
  });

  it("rolls back the revision with a failed write", async () => {
    const start = await currentRevision(database.db, orgId);
    await expect(
      writeWithChanges(app, orgId, async ({ emit }) => {
        emit({ kind: "key_delete", resourceId: "ak_x", payload: { id: "ak_x" } });
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await currentRevision(database.db, orgId)).toBe(start);
    const next = await writeWithChanges(app, orgId, async ({ emit }) => {
      emit({ kind: "key_delete", resourceId: "ak_y", payload: { id: "ak_y" } });
    });
    expect(next.revision).toBe(start + 1);
  });
});

describe("change notifier", () => {
  it("wakes waiters of the changed organization only, and times out otherwise", async () => {
    const n = new ChangeNotifier();
    const signal = new AbortController().signal;
    const a = n.wait("org_a", n.version("org_a"), 1000, signal);
    const b = n.wait("org_b", n.version("org_b"), 50, signal);
    n.notify("org_a");
    expect(await a).toBe("changed");
    expect(await b).toBe("timeout");
    // A change between reading the version and waiting is not lost.
    const v = n.version("org_a");
    n.notify("org_a");
    expect(await n.wait("org_a", v, 1000, signal)).toBe("changed");
  });
});
