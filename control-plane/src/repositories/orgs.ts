import { newId } from "@tollgate/shared";
import type { Db } from "../db/database.js";
import { toNumber } from "./rows.js";

export const DEFAULT_ORG_NAME = "default";

/** Returns the id of the default organization, creating it on first start. */
export async function ensureDefaultOrg(db: Db): Promise<string> {
  await db
    .insertInto("orgs")
    .values({ id: newId("org"), name: DEFAULT_ORG_NAME })
    .onConflict((oc) => oc.column("name").doNothing())
    .execute();
  const row = await db.selectFrom("orgs").select("id").where("name", "=", DEFAULT_ORG_NAME).executeTakeFirstOrThrow();
  return row.id;
}

export async function currentRevision(db: Db, orgId: string): Promise<number> {
  const row = await db.selectFrom("orgs").select("revision").where("id", "=", orgId).executeTakeFirst();
  return toNumber(row?.revision);
}
