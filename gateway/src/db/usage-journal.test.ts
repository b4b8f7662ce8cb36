import { appendFileSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "@tollgate/shared";
import { tempDir } from "@tollgate/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { META_UPSERT_SQL } from "./meta-repository.js";
import { openStore, type GatewayStore } from "./store.js";
import {
  JOURNAL_DIR,
  UsageJournal,
  decodeLine,
  encodeLine,
  parsePosition,
  type JournalUsage,
} from "./usage-journal.js";
import {
  JOURNAL_CHECKPOINT_META_KEY,
  OUTBOX_INSERT_SQL,
  UsageOutbox,
  type OutboxRecord,
} from "../quota/usage-outbox.js";

const logger = createLogger({ name: "test", level: "silent" });
const AT = Date.parse("2026-12-03T10:00:00Z");
const use = (i: number): JournalUsage => ({
  keyId: `ak_${i % 3}`,
  userId: "user_1",
  teamId: "team_1",
  atMs: AT + i,
  inputTokens: 10 + i,
  outputTokens: 5,
  costMicroUsd: 7,
});

/**
 * The journal and the outbox against a real SQLite file, each "kill -9" made by
 * dropping the objects without their shutdown (a killed process runs none) and
 * building new ones on the same files, as a restarted gateway does.
 */
describe("usage journal: exactly once across a kill -9 at any point", () => {
  let dir: ReturnType<typeof tempDir>;
  let store: GatewayStore;
  const open: UsageJournal[] = [];
  afterEach(() => {
    for (const j of open.splice(0)) j.close();
    store?.close();
    dir?.remove();
  });

  /** A gateway's start: the journal beside the SQLite file, replayed into the outbox. */
  const boot = (rotateBytes?: number) => {
    const journal = new UsageJournal(join(dir.path, JOURNAL_DIR), { logger, rotateBytes });
    open.push(journal);
    return { journal, outbox: new UsageOutbox({ db: store.db, logger, now: () => AT, journal }) };
  };
  /** A log batch's transaction, as the log writer runs it: the outbox row and the checkpoint. */
  const commit = (take: ReturnType<UsageOutbox["takePending"]>) => {
    const insert = store.db.prepare(OUTBOX_INSERT_SQL);
    const upsert = store.db.prepare(META_UPSERT_SQL);
    store.db.transaction(() => {
      if (take.row) insert.run(...take.row);
      if (take.checkpoint) upsert.run(...take.checkpoint);
    })();
  };
  const totals = () => {
    const rows = store.db.prepare("SELECT records FROM usage_outbox").all() as Array<{ records: string }>;
    const all = rows.flatMap((r) => JSON.parse(r.records) as OutboxRecord[]);
    return {
      requests: all.reduce((n, r) => n + r.requests, 0),
      inputTokens: all.reduce((n, r) => n + r.inputTokens, 0),
    };
  };
  const expected = (n: number) => ({
    requests: n,
    inputTokens: Array.from({ length: n }, (_, i) => 10 + i).reduce((a, b) => a + b, 0),
  });
  /** A new data directory and a gateway on it that settled `n` requests (journal only, no batch yet). */
  const fresh = (n = 0, rotateBytes?: number) => {
    dir = tempDir();
    store = openStore(dir.path);
    const first = boot(rotateBytes);
    for (let i = 0; i < n; i++) first.outbox.add(use(i));
    return first;
  };

  it("encodes one line per request and rejects a torn or damaged one", () => {
    const line = encodeLine("id1", use(1));
    expect(line.endsWith("\n")).toBe(true);
    expect(decodeLine(line.slice(0, -1))).toEqual({ id: "id1", usage: use(1) });
    expect(decodeLine(line.slice(0, 30))).toBeNull();
    expect(decodeLine(line.slice(0, -1).replace('"ak_1"', '"ak_2"'))).toBeNull();
    expect(decodeLine("\0\0\0\0\0\0\0\0\0\0\0\0")).toBeNull();
    // An odd count from an upstream still makes a line that replays (as 0, as the outbox counts it).
    const odd = decodeLine(encodeLine("id2", { ...use(1), costMicroUsd: Number.NaN }).slice(0, -1));
    expect(odd?.usage.costMicroUsd).toBe(0);
  });

  it("killed after the journal write, before any batch: replayed at start, once", () => {
    const first = fresh(20);
    // kill -9: nothing reached SQLite.
    expect(totals().requests).toBe(0);
    boot();
    expect(totals()).toEqual(expected(20));
    // A second restart finds nothing new: no double count.
    boot();
    boot();
    expect(totals()).toEqual(expected(20));
  });

  it("killed during the batch's transaction (rolled back): replayed; killed after its commit: not replayed", () => {
    const first = fresh(10);
    first.outbox.takePending(); // taken for a batch that never commits
    boot();
    expect(totals()).toEqual(expected(10));

    const again = fresh(10);
    commit(again.outbox.takePending()); // committed; killed before done() deletes anything
    for (let i = 10; i < 15; i++) again.outbox.add(use(i)); // after the batch: journal only
    boot();
    expect(totals()).toEqual(expected(15));
    expect(store.db.prepare("SELECT count(*) AS n FROM usage_outbox").get()).toEqual({ n: 2 });
  });

  it("lines added before answers go out in one write at the end of the event-loop turn, which the answers await", async () => {
    const first = fresh();
    const [segment] = readdirSync(first.journal.dir);
    const path = join(first.journal.dir, segment!);
    const waits = [0, 1, 2].map((i) => first.outbox.addBeforeAnswer(use(i)));
    expect(waits[0]).toBeInstanceOf(Promise);
    expect(new Set(waits).size).toBe(1);
    expect(readFileSync(path, "utf8")).toBe("");
    await waits[0];
    expect(readFileSync(path, "utf8").split("\n").filter(Boolean)).toHaveLength(3);
    // The answers went out; kill -9 now: replayed at start, once.
    boot();
    expect(totals()).toEqual(expected(3));
    boot();
    expect(totals()).toEqual(expected(3));
  });

  it("a batch taken while lines wait for their write writes them first: its checkpoint covers them, counted once", async () => {
    const first = fresh(2);
    const wait = first.outbox.addBeforeAnswer(use(2));
    const take = first.outbox.takePending();
    commit(take);
    take.done();
    await wait;
    expect(totals()).toEqual(expected(3));
    boot();
    expect(totals()).toEqual(expected(3));
  });

  it("the checkpoint copy is overwritten in place and reads as the last commit, a shorter one after a longer", () => {
    const first = fresh(3);
    const { segment } = first.journal.position();
    for (const p of [
      { segment, offset: 987_654_321 },
      { segment, offset: 5 },
    ]) {
      first.journal.committed(p);
      expect(parsePosition(readFileSync(join(first.journal.dir, "checkpoint"), "utf8"))).toEqual(p);
    }
  });

  it("a torn last line (killed mid-write) is skipped, the lines before it count", () => {
    const first = fresh(5);
    const [segment] = readdirSync(first.journal.dir);
    appendFileSync(join(first.journal.dir, segment!), encodeLine("torn", use(99)).slice(0, 25));
    boot();
    expect(totals()).toEqual(expected(5));
    boot();
    expect(totals()).toEqual(expected(5));
  });

  it("a line written twice (same id) counts once", () => {
    const first = fresh(1);
    const [segment] = readdirSync(first.journal.dir);
    const path = join(first.journal.dir, segment!);
    writeFileSync(path, readFileSync(path, "utf8").repeat(2));
    boot();
    expect(totals()).toEqual(expected(1));
  });

  it("killed during the replay's own commit: the next start replays the same lines, once", () => {
    const first = fresh(8);
    // A start that read the journal and opened its new segment, then died before committing.
    const dying = new UsageJournal(first.journal.dir, { logger });
    open.push(dying);
    expect(dying.recover(parsePosition(undefined)).entries).toHaveLength(8);
    boot();
    expect(totals()).toEqual(expected(8));
  });

  it("a failed batch's take goes back to memory and the checkpoint waits for it; one take is written at a time", () => {
    const first = fresh(4);
    const failed = first.outbox.takePending();
    // While it is written, the next batch takes nothing: its checkpoint would pass the first's lines.
    first.outbox.add(use(4));
    expect(first.outbox.takePending().row).toBeNull();
    failed.undo();
    for (let i = 5; i < 9; i++) first.outbox.add(use(i));
    const ok = first.outbox.takePending();
    commit(ok);
    ok.done();
    expect(totals()).toEqual(expected(9));
    boot();
    expect(totals()).toEqual(expected(9));
  });

  it("rotates past rotateBytes and deletes segments once a checkpoint past them commits; a kill before the delete replays nothing", () => {
    const first = fresh(6, 200);
    const take = first.outbox.takePending(); // past 200 bytes: the next lines go to a new segment
    for (let i = 6; i < 9; i++) first.outbox.add(use(i));
    expect(first.journal.segments()).toHaveLength(2);
    commit(take);
    // Killed before done(): the old segments are still on disk, wholly before the checkpoint.
    const { journal } = boot(200);
    expect(totals()).toEqual(expected(9));
    // The start deleted everything before its own segment.
    expect(journal.segments()).toEqual([journal.position().segment]);
    const cp = store.db.prepare("SELECT value FROM meta WHERE key = ?").get(JOURNAL_CHECKPOINT_META_KEY) as {
      value: string;
    };
    expect(parsePosition(cp.value)).toEqual(journal.position());
  });

  it("done() deletes the committed segments while running", () => {
    const first = fresh(3, 100);
    const take = first.outbox.takePending();
    commit(take);
    take.done();
    expect(first.journal.segments()).toEqual([first.journal.position().segment]);
  });

  it("a replaced SQLite file (damaged cache moved aside) does not make the lines its old file committed count again", () => {
    const first = fresh(5);
    const take = first.outbox.takePending();
    commit(take);
    take.done();
    for (let i = 5; i < 8; i++) first.outbox.add(use(i));
    store.close();
    for (const f of readdirSync(dir.path)) if (f.startsWith("gateway.db")) rmSync(join(dir.path, f));
    store = openStore(dir.path);
    boot();
    // The old file's 5 went with it (reported or not); the 3 after its checkpoint are replayed.
    expect(totals().requests).toBe(3);
  });
  it("counts a journal it cannot write (the gateway's failures metric reads it) and keeps the usage in memory", () => {
    const journalDir = join(dir.path, "failing-journal");
    const journal = new UsageJournal(journalDir, { logger, rotateBytes: 1 });
    journal.recover(parsePosition(undefined));
    journal.append(use(1));
    expect(journal.failureCount).toBe(0);
    // The directory is gone and a file stands in its place: the next segment cannot be opened.
    rmSync(journalDir, { recursive: true });
    writeFileSync(journalDir, "not a directory");
    journal.rotateIfLarge();
    journal.append(use(2));
    expect(journal.failureCount).toBeGreaterThanOrEqual(1);
    journal.close();
  });
});
