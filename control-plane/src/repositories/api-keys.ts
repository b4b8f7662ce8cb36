import { AppError } from "@tollgate/shared";
import { sql, type RawBuilder } from "kysely";
import type { Db } from "../db/database.js";
import type { ApiKeyRow } from "../db/schema.js";
import { likeLiteral, toBuffer } from "./rows.js";
import {
  mcpJson,
  settingsColumns,
  toApiKey,
  type ApiKey,
  type ApiKeySettings,
  type KeyRowWithOwner,
  type KeyStatusName,
} from "./api-key-rows.js";

export {
  DEFAULT_KEY_SETTINGS,
  effectiveStatus,
  type ApiKey,
  type ApiKeySettings,
  type KeyStatusName,
  type McpAccessMode,
} from "./api-key-rows.js";

export interface NewApiKey {
  id: string;
  orgId: string;
  userId: string;
  name: string;
  hash: Buffer;
  prefix: string;
  settings: ApiKeySettings;
}

export async function insertApiKey(trx: Db, input: NewApiKey): Promise<ApiKey> {
  return (await insertApiKeys(trx, [input]))[0]!;
}

/** Inserts many keys with multi-row statements (1,000 rows each). */
export async function insertApiKeys(trx: Db, input: NewApiKey[]): Promise<ApiKey[]> {
  return (await insertApiKeyRows(trx, input)).map(toApiKey);
}

/** Inserts keys and returns their rows as stored, for callers that build more than the admin view from them. */
export async function insertApiKeyRows(trx: Db, input: NewApiKey[]): Promise<ApiKeyRow[]> {
  const now = new Date();
  const out: ApiKeyRow[] = [];
  for (let i = 0; i < input.length; i += 1000) {
    const rows = await trx
      .insertInto("api_keys")
      .values(
        input.slice(i, i + 1000).map(
          (k) =>
            ({
              id: k.id,
              org_id: k.orgId,
              user_id: k.userId,
              name: k.name,
              key_hash: k.hash,
              key_prefix: k.prefix,
              status: "active",
              created_at: now,
              updated_at: now,
              ...settingsColumns(k.settings),
              mcp: mcpJson(k.settings),
            }) as never,
        ),
      )
      .returningAll()
      .execute();
    out.push(...rows);
  }
  return out;
}

function withOwner(db: Db) {
  return db
    .selectFrom("api_keys as k")
    .leftJoin("users as u", "u.id", "k.user_id")
    .selectAll("k")
    .select("u.external_id as owner");
}

export async function getApiKey(db: Db, orgId: string, id: string): Promise<ApiKey | undefined> {
  const row = await withOwner(db).where("k.org_id", "=", orgId).where("k.id", "=", id).executeTakeFirst();
  return row && toApiKey(row as KeyRowWithOwner);
}

/** Locks the key row for the rest of the transaction (rotation, status changes). */
export async function lockApiKey(
  trx: Db,
  orgId: string,
  id: string,
): Promise<(ApiKey & { key_hash: Buffer }) | undefined> {
  const row = await trx
    .selectFrom("api_keys")
    .selectAll()
    .where("org_id", "=", orgId)
    .where("id", "=", id)
    .forUpdate()
    .executeTakeFirst();
  return row && { ...toApiKey(row), key_hash: toBuffer(row.key_hash) };
}

export interface ApiKeyPatch extends Partial<ApiKeySettings> {
  name?: string;
  status?: "active" | "inactive" | "revoked";
}

export async function updateApiKey(
  trx: Db,
  orgId: string,
  id: string,
  patch: ApiKeyPatch,
  current: ApiKey,
): Promise<ApiKey> {
  const mcpTouched = ["mcp_enabled", "mcp_access_mode", "mcp_servers", "mcp_tools"].some((k) => k in patch);
  const row = await trx
    .updateTable("api_keys")
    .set({
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      ...(patch.status !== undefined ? { status: patch.status } : {}),
      ...settingsColumns(patch),
      ...(mcpTouched
        ? {
            mcp: mcpJson({
              mcp_enabled: patch.mcp_enabled ?? current.mcp_enabled,
              mcp_access_mode: patch.mcp_access_mode ?? current.mcp_access_mode,
              mcp_servers: patch.mcp_servers ?? current.mcp_servers,
              mcp_tools: patch.mcp_tools ?? current.mcp_tools,
            }),
          }
        : {}),
      updated_at: new Date(),
    } as never)
    .where("org_id", "=", orgId)
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return toApiKey(row);
}

/** Replaces the secret; the previous hash keeps working until `previousExpiresAt` (null: stops now). */
export async function rotateApiKeySecret(
  trx: Db,
  orgId: string,
  id: string,
  input: { hash: Buffer; prefix: string; previousHash: Buffer | null; previousExpiresAt: Date | null },
): Promise<ApiKey> {
  const row = await trx
    .updateTable("api_keys")
    .set({
      key_hash: input.hash,
      key_prefix: input.prefix,
      previous_key_hash: input.previousHash,
      previous_key_expires_at: input.previousExpiresAt,
      updated_at: new Date(),
    })
    .where("org_id", "=", orgId)
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return toApiKey(row);
}

export async function deleteApiKey(trx: Db, orgId: string, id: string): Promise<ApiKey | undefined> {
  const row = await trx
    .deleteFrom("api_keys")
    .where("org_id", "=", orgId)
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirst();
  return row && toApiKey(row);
}

export async function apiKeyIdsOfUser(trx: Db, orgId: string, userId: string): Promise<string[]> {
  const rows = await trx
    .selectFrom("api_keys")
    .select("id")
    .where("org_id", "=", orgId)
    .where("user_id", "=", userId)
    .orderBy("id")
    .execute();
  return rows.map((r) => r.id);
}

export async function apiKeyIdsOfTeam(trx: Db, orgId: string, teamId: string): Promise<string[]> {
  const rows = await trx
    .selectFrom("api_keys as k")
    .innerJoin("users as u", "u.id", "k.user_id")
    .select("k.id")
    .where("k.org_id", "=", orgId)
    .where("u.team_id", "=", teamId)
    .orderBy("k.id")
    .execute();
  return rows.map((r) => r.id);
}

/** Requests served by all the organization's keys (deleted keys' requests are gone with them). */
export async function orgRequestTotal(db: Db, orgId: string): Promise<number> {
  const row = await db
    .selectFrom("api_keys")
    .select(sql<string>`coalesce(sum(request_count), 0)`.as("total"))
    .where("org_id", "=", orgId)
    .executeTakeFirstOrThrow();
  return Number(row.total);
}

export type KeySort = "name" | "owner" | "status" | "created" | "requests";

export interface KeyListQuery {
  limit: number;
  cursor?: { v: string | number; id: string } | undefined;
  userId?: string | undefined;
  search?: string | undefined;
  status?: KeyStatusName | undefined;
  sort: KeySort;
  order: "asc" | "desc";
}

const SORT_EXPR = {
  name: sql<string>`k.name`,
  // Every key has its user (a foreign key), so no coalesce: that lets Postgres walk
  // the users' (org_id, external_id) index instead of sorting every key.
  owner: sql<string>`u.external_id`,
  status: sql<string>`k.status`,
  created: sql<string>`k.created_at`,
  requests: sql<number>`coalesce(k.request_count, 0)`,
} as const;

/** Keyset pagination on (sort value, id); the cursor is opaque to clients. */
export async function listApiKeys(
  db: Db,
  orgId: string,
  q: KeyListQuery,
): Promise<{ rows: ApiKey[]; next: { v: string | number; id: string } | null }> {
  const expr: RawBuilder<unknown> = SORT_EXPR[q.sort];
  let query = db
    .selectFrom("api_keys as k")
    .innerJoin("users as u", "u.id", "k.user_id")
    .selectAll("k")
    .select("u.external_id as owner")
    .select(expr.as("sort_value"))
    .where("k.org_id", "=", orgId)
    .where("u.org_id", "=", orgId);
  if (q.userId) query = query.where("k.user_id", "=", q.userId);
  if (q.search) {
    const literal = likeLiteral(q.search);
    query = query.where((eb) =>
      eb.or([eb("k.name", "ilike", `%${literal}%`), eb("k.key_prefix", "like", `${literal}%`)]),
    );
  }
  if (q.status === "expired")
    query = query.where("k.status", "=", "active").where("k.expires_at", "<=", sql<Date>`now()`);
  else if (q.status === "active") {
    query = query
      .where("k.status", "=", "active")
      .where((eb) => eb.or([eb("k.expires_at", "is", null), eb("k.expires_at", ">", sql<Date>`now()`)]));
  } else if (q.status) query = query.where("k.status", "=", q.status);
  if (q.cursor) {
    const cmp = q.order === "asc" ? sql`>` : sql`<`;
    const value = q.sort === "created" ? new Date(q.cursor.v as string) : q.cursor.v;
    // A cursor of the right shape for another sort, or with a value no row can have, is no cursor this API returned.
    const fits =
      q.sort === "created"
        ? typeof q.cursor.v === "string" && !Number.isNaN((value as Date).getTime())
        : q.sort === "requests"
          ? Number.isSafeInteger(q.cursor.v)
          : typeof q.cursor.v === "string";
    if (!fits || q.cursor.id.length > 64) {
      throw new AppError("invalid_request", "cursor is not one this API returned: pass next_cursor unchanged", {
        field: "cursor",
      });
    }
    query = query.where(sql<boolean>`(${expr}, k.id) ${cmp} (${value}, ${q.cursor.id})`);
  }
  const rows = await query
    .orderBy(expr, q.order)
    .orderBy("k.id", q.order)
    .limit(q.limit + 1)
    .execute();
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1] as (KeyRowWithOwner & { sort_value: unknown }) | undefined;
  const next =
    rows.length > q.limit && last
      ? {
          v: last.sort_value instanceof Date ? last.sort_value.toISOString() : (last.sort_value as string | number),
          id: last.id,
        }
      : null;
  return { rows: page.map((r) => toApiKey(r as KeyRowWithOwner)), next };
}
