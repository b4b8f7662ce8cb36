import type { Db } from "../db/database.js";
import type { TeamRow } from "../db/schema.js";
import { orgRepository, type Page } from "./org-rows.js";
import { nullableNumbers, timestamps } from "./rows.js";

export interface Team {
  id: string;
  name: string;
  tpm_limit: number | null;
  daily_token_limit: number | null;
  created_at: string;
  updated_at: string;
}

function toTeam(r: TeamRow): Team {
  return { id: r.id, name: r.name, ...nullableNumbers(r, ["tpm_limit", "daily_token_limit"]), ...timestamps(r) };
}

const teams = orgRepository("teams", toTeam);

export function insertTeam(
  trx: Db,
  orgId: string,
  input: { name: string; tpm_limit?: number | null | undefined; daily_token_limit?: number | null | undefined },
): Promise<Team> {
  const { name, tpm_limit = null, daily_token_limit = null } = input;
  return teams.insert(trx, orgId, { name, tpm_limit, daily_token_limit });
}

export const findTeamByName = (db: Db, orgId: string, name: string) => teams.find(db, orgId, "name", name);
export const getTeam = (db: Db, orgId: string, id: string) => teams.find(db, orgId, "id", id);
export const listTeams = (db: Db, orgId: string, page: Page) => teams.list(db, orgId, page);
export const deleteTeam = (trx: Db, orgId: string, id: string) => teams.delete(trx, orgId, id);

export function updateTeam(
  trx: Db,
  orgId: string,
  id: string,
  patch: {
    name?: string | undefined;
    tpm_limit?: number | null | undefined;
    daily_token_limit?: number | null | undefined;
  },
): Promise<Team | undefined> {
  return teams.update(trx, orgId, id, patch, ["name", "tpm_limit", "daily_token_limit"]);
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
