import { sql } from "kysely";
import type { Db } from "../db/database.js";

/** Drops counter windows that ended more than an hour ago, with their holdings. */
export async function purgeEndedWindows(db: Db, now: Date): Promise<number> {
  const before = new Date(now.getTime() - 3_600_000);
  await sql`delete from quota_holdings h using quota_counters c
    where h.org_id = c.org_id and h.counter = c.counter and h.window_key = c.window_key and c.window_ends_at < ${before}`.execute(
    db,
  );
  const res = await db.deleteFrom("quota_counters").where("window_ends_at", "<", before).executeTakeFirst();
  return Number(res.numDeletedRows);
}
