import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestDatabase } from "../../test/test-database.js";
import { AckWriter } from "./ack-writer.js";
import { ChangeNotifier } from "./notifier.js";

describe("AckWriter", () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    database = await openTestDatabase();
  });
  afterAll(async () => {
    await database.cleanup();
  });

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
});
