import { newId } from "@tollgate/shared";
import type { Db } from "../db/database.js";
import { toIso, toNullableNumber } from "./rows.js";
import type { TeamRow } from "../db/schema.js";

export interface Team {
  id: string;
  name: string;
  tpm_limit: number | null;
  daily_token_limit: number | null;
  created_at: string;
  updated_at: string;
}

function toTeam(r: TeamRow): Team {
  return {
    id: r.id,
    name: r.name,
    tpm_limit: toNullableNumber(r.tpm_limit),
    daily_token_limit: toNullableNumber(r.daily_token_limit),
    created_at: toIso(r.created_at)!,
    updated_at: toIso(r.updated_at)!,
  };
}

export async function insertTeam(
  trx: Db,
  orgId: string,
  input: { name: string; tpm_limit?: number | null | undefined; daily_token_limit?: number | null | undefined },
): Promise<Team> {
  const now = new Date();
  const row = await trx
    .insertInto("teams")
    .values({
      id: newId("team"),
      org_id: orgId,
      name: input.name,
      tpm_limit: input.tpm_limit ?? null,
      daily_token_limit: input.daily_token_limit ?? null,
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toTeam(row);
}

/** The organization's team whose unique `column` holds `value`. */
async function findTeamBy(db: Db, orgId: string, column: "id" | "name", value: string): Promise<Team | undefined> {
  const row = await db
    .selectFrom("teams")
    .selectAll()
    .where("org_id", "=", orgId)
    .where(column, "=", value)
    .executeTakeFirst();
  return row && toTeam(row);
}

export function findTeamByName(db: Db, orgId: string, name: string): Promise<Team | undefined> {
  return findTeamBy(db, orgId, "name", name);
}

export function getTeam(db: Db, orgId: string, id: string): Promise<Team | undefined> {
  return findTeamBy(db, orgId, "id", id);
}

export async function listTeams(
  db: Db,
  orgId: string,
  page: { after?: string | undefined; limit: number },
): Promise<Team[]> {
  let q = db.selectFrom("teams").selectAll().where("org_id", "=", orgId);
  if (page.after) q = q.where("id", ">", page.after);
  const rows = await q.orderBy("id").limit(page.limit).execute();
  return rows.map(toTeam);
}

export async function updateTeam(
  trx: Db,
  orgId: string,
  id: string,
  patch: {
    name?: string | undefined;
    tpm_limit?: number | null | undefined;
    daily_token_limit?: number | null | undefined;
  },
): Promise<Team | undefined> {
  const row = await trx
    .updateTable("teams")
    .set({
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      ...(patch.tpm_limit !== undefined ? { tpm_limit: patch.tpm_limit } : {}),
      ...(patch.daily_token_limit !== undefined ? { daily_token_limit: patch.daily_token_limit } : {}),
      updated_at: new Date(),
    })
    .where("org_id", "=", orgId)
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirst();
  return row && toTeam(row);
}

export async function deleteTeam(trx: Db, orgId: string, id: string): Promise<Team | undefined> {
  const row = await trx
    .deleteFrom("teams")
    .where("org_id", "=", orgId)
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirst();
  return row && toTeam(row);
}

export async function countTeamUsers(trx: Db, orgId: string, id: string): Promise<number> {
  const row = await trx
    .selectFrom("users")
    .select((eb) => eb.fn.countAll<string | number>().as("n"))
    .where("org_id", "=", orgId)
    .where("team_id", "=", id)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
