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

export interface Org {
  id: string;
  name: string;
  revision: number;
  is_default: boolean;
  created_at: string;
}

function toOrg(r: { id: string; name: string; revision: string | number; created_at: Date }): Org {
  return {
    id: r.id,
    name: r.name,
    revision: toNumber(r.revision),
    is_default: r.name === DEFAULT_ORG_NAME,
    created_at: r.created_at.toISOString(),
  };
}

export async function insertOrg(trx: Db, input: { id: string; name: string }): Promise<Org> {
  return toOrg(await trx.insertInto("orgs").values(input).returningAll().executeTakeFirstOrThrow());
}

export async function getOrg(db: Db, id: string): Promise<Org | undefined> {
  const row = await db.selectFrom("orgs").selectAll().where("id", "=", id).executeTakeFirst();
  return row && toOrg(row);
}

export async function findOrgByName(db: Db, name: string): Promise<Org | undefined> {
  const row = await db.selectFrom("orgs").selectAll().where("name", "=", name).executeTakeFirst();
  return row && toOrg(row);
}

export async function listOrgs(db: Db): Promise<Org[]> {
  return (await db.selectFrom("orgs").selectAll().orderBy("id").execute()).map(toOrg);
}

/**
 * Takes the organization's row lock until the transaction ends: writers that
 * read before they write (price seeding, price overrides) serialize on it.
 */
export async function lockOrg(trx: Db, orgId: string): Promise<void> {
  await trx.selectFrom("orgs").select("id").where("id", "=", orgId).forUpdate().executeTakeFirst();
}
