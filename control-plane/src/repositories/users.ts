import type { MemberRole } from "../auth/roles.js";
import type { Db } from "../db/database.js";
import type { UserRow } from "../db/schema.js";
import { orgRepository, type Page } from "./org-rows.js";
import { nullableNumbers, timestamps } from "./rows.js";

export interface User {
  id: string;
  external_id: string;
  team_id: string | null;
  /** `admin` (the whole organization) or `member` (their own keys). */
  role: MemberRole;
  /** Per-user limits, counted over all the user's keys across the fleet. */
  rpm_limit: number | null;
  tpm_limit: number | null;
  daily_token_limit: number | null;
  created_at: string;
  updated_at: string;
}

const LIMITS = ["rpm_limit", "tpm_limit", "daily_token_limit"] as const;

function toUser({ id, external_id, team_id, role, ...r }: UserRow): User {
  return { id, external_id, team_id, role, ...nullableNumbers(r, LIMITS), ...timestamps(r) };
}

export interface UserLimits {
  rpm_limit: number | null | undefined;
  tpm_limit: number | null | undefined;
  daily_token_limit: number | null | undefined;
}

const users = orgRepository("users", toUser);

export function insertUser(
  trx: Db,
  orgId: string,
  input: {
    external_id: string;
    team_id?: string | null | undefined;
    role?: MemberRole | undefined;
  } & Partial<UserLimits>,
): Promise<User> {
  const { external_id, team_id = null, role = "member", rpm_limit = null, tpm_limit = null } = input;
  const { daily_token_limit = null } = input;
  return users.insert(trx, orgId, { external_id, team_id, role, rpm_limit, tpm_limit, daily_token_limit });
}

export const findUserByExternalId = (db: Db, orgId: string, externalId: string) =>
  users.find(db, orgId, "external_id", externalId);
export const getUser = (db: Db, orgId: string, id: string) => users.find(db, orgId, "id", id);
export const deleteUser = (trx: Db, orgId: string, id: string) => users.delete(trx, orgId, id);

export function listUsers(db: Db, orgId: string, page: Page & { teamId?: string | undefined }): Promise<User[]> {
  return users.list(db, orgId, page, { column: "team_id", value: page.teamId });
}

/** The subset of `ids` that exist in the organization. */
export async function existingUserIds(db: Db, orgId: string, ids: string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < ids.length; i += 1000) {
    const rows = await db
      .selectFrom("users")
      .select("id")
      .where("org_id", "=", orgId)
      .where("id", "in", ids.slice(i, i + 1000))
      .execute();
    for (const r of rows) found.add(r.id);
  }
  return found;
}

export function updateUser(
  trx: Db,
  orgId: string,
  id: string,
  patch: {
    external_id?: string | undefined;
    team_id?: string | null | undefined;
    role?: MemberRole | undefined;
  } & Partial<UserLimits>,
): Promise<User | undefined> {
  return users.update(trx, orgId, id, patch, ["external_id", "team_id", "role", ...LIMITS]);
}
