import { newId } from "@tollgate/shared";
import type { MemberRole } from "../auth/roles.js";
import type { Db } from "../db/database.js";
import type { UserRow } from "../db/schema.js";
import { toIso, toNullableNumber } from "./rows.js";

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

function toUser(r: UserRow): User {
  return {
    id: r.id,
    external_id: r.external_id,
    team_id: r.team_id,
    role: r.role,
    rpm_limit: toNullableNumber(r.rpm_limit),
    tpm_limit: toNullableNumber(r.tpm_limit),
    daily_token_limit: toNullableNumber(r.daily_token_limit),
    created_at: toIso(r.created_at)!,
    updated_at: toIso(r.updated_at)!,
  };
}

export interface UserLimits {
  rpm_limit: number | null | undefined;
  tpm_limit: number | null | undefined;
  daily_token_limit: number | null | undefined;
}

export async function insertUser(
  trx: Db,
  orgId: string,
  input: {
    external_id: string;
    team_id?: string | null | undefined;
    role?: MemberRole | undefined;
  } & Partial<UserLimits>,
): Promise<User> {
  const now = new Date();
  const row = await trx
    .insertInto("users")
    .values({
      id: newId("user"),
      org_id: orgId,
      external_id: input.external_id,
      team_id: input.team_id ?? null,
      role: input.role ?? "member",
      rpm_limit: input.rpm_limit ?? null,
      tpm_limit: input.tpm_limit ?? null,
      daily_token_limit: input.daily_token_limit ?? null,
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toUser(row);
}

/** The organization's user whose unique `column` holds `value`. */
async function findUserBy(
  db: Db,
  orgId: string,
  column: "id" | "external_id",
  value: string,
): Promise<User | undefined> {
  const row = await db
    .selectFrom("users")
    .selectAll()
    .where("org_id", "=", orgId)
    .where(column, "=", value)
    .executeTakeFirst();
  return row && toUser(row);
}

export function findUserByExternalId(db: Db, orgId: string, externalId: string): Promise<User | undefined> {
  return findUserBy(db, orgId, "external_id", externalId);
}

export function getUser(db: Db, orgId: string, id: string): Promise<User | undefined> {
  return findUserBy(db, orgId, "id", id);
}

export async function listUsers(
  db: Db,
  orgId: string,
  page: { after?: string | undefined; limit: number; teamId?: string | undefined },
): Promise<User[]> {
  let q = db.selectFrom("users").selectAll().where("org_id", "=", orgId);
  if (page.teamId) q = q.where("team_id", "=", page.teamId);
  if (page.after) q = q.where("id", ">", page.after);
  const rows = await q.orderBy("id").limit(page.limit).execute();
  return rows.map(toUser);
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

export async function updateUser(
  trx: Db,
  orgId: string,
  id: string,
  patch: {
    external_id?: string | undefined;
    team_id?: string | null | undefined;
    role?: MemberRole | undefined;
  } & Partial<UserLimits>,
): Promise<User | undefined> {
  const row = await trx
    .updateTable("users")
    .set({
      ...(patch.external_id !== undefined ? { external_id: patch.external_id } : {}),
      ...(patch.team_id !== undefined ? { team_id: patch.team_id } : {}),
      ...(patch.role !== undefined ? { role: patch.role } : {}),
      ...(patch.rpm_limit !== undefined ? { rpm_limit: patch.rpm_limit } : {}),
      ...(patch.tpm_limit !== undefined ? { tpm_limit: patch.tpm_limit } : {}),
      ...(patch.daily_token_limit !== undefined ? { daily_token_limit: patch.daily_token_limit } : {}),
      updated_at: new Date(),
    })
    .where("org_id", "=", orgId)
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirst();
  return row && toUser(row);
}

export async function deleteUser(trx: Db, orgId: string, id: string): Promise<User | undefined> {
  const row = await trx
    .deleteFrom("users")
    .where("org_id", "=", orgId)
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirst();
  return row && toUser(row);
}
