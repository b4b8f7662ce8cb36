import { AppError } from "@tollgate/shared";
import { sql, type RawBuilder } from "kysely";
import type { Db } from "../db/database.js";
import type { ApiKeyRow, McpSettingsJson } from "../db/schema.js";
import { toBuffer, toIso, toNullableNumber } from "./rows.js";

export type KeyStatusName = "active" | "inactive" | "expired" | "revoked";
export type McpAccessMode = McpSettingsJson["access_mode"];

/** What an admin can set on a key besides its name and owner. */
export interface ApiKeySettings {
  expires_at: Date | null;
  rpm_limit: number | null;
  tpm_limit: number | null;
  tokens_per_day_limit: number | null;
  max_concurrent_requests: number | null;
  budget_usd: number | null;
  /** When the budget starts over: never (total), every UTC day or every UTC month. */
  budget_period: "total" | "daily" | "monthly";
  budget_alert_thresholds: number[];
  allowed_providers: string[];
  allowed_models: string[];
  ip_allowlist: string[];
  metadata: Record<string, unknown>;
  mcp_enabled: boolean;
  mcp_access_mode: McpAccessMode;
  mcp_servers: string[];
  mcp_tools: Record<string, string[]>;
}

export const DEFAULT_KEY_SETTINGS: ApiKeySettings = {
  expires_at: null,
  rpm_limit: null,
  tpm_limit: null,
  tokens_per_day_limit: null,
  max_concurrent_requests: null,
  budget_usd: null,
  budget_period: "total",
  budget_alert_thresholds: [],
  allowed_providers: [],
  allowed_models: [],
  ip_allowlist: [],
  metadata: {},
  mcp_enabled: false,
  mcp_access_mode: "allow_all",
  mcp_servers: [],
  mcp_tools: {},
};

/** Key metadata as admins see it: never the key, never its hash. */
export interface ApiKey extends Omit<ApiKeySettings, "expires_at"> {
  id: string;
  name: string;
  key_prefix: string;
  user_id: string;
  /** The owner's external id (e.g. an email). */
  owner: string | null;
  status: KeyStatusName;
  expires_at: string | null;
  previous_key_expires_at: string | null;
  last_used_at: string | null;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  /** What the key has cost so far, over its whole life. */
  spend_usd: number;
  created_at: string;
  updated_at: string;
}

type KeyRowWithOwner = ApiKeyRow & { owner?: string | null };

/** `expired` is derived from the clock, so it holds the second a key expires. */
export function effectiveStatus(stored: string, expiresAt: Date | null, now: Date = new Date()): KeyStatusName {
  if (stored === "active" && expiresAt && expiresAt.getTime() <= now.getTime()) return "expired";
  return stored as KeyStatusName;
}

function toApiKey(r: KeyRowWithOwner): ApiKey {
  const mcp = r.mcp;
  return {
    id: r.id,
    name: r.name,
    key_prefix: r.key_prefix,
    user_id: r.user_id,
    owner: r.owner ?? null,
    status: effectiveStatus(r.status, r.expires_at),
    expires_at: toIso(r.expires_at),
    rpm_limit: toNullableNumber(r.rpm_limit),
    tpm_limit: toNullableNumber(r.tpm_limit),
    tokens_per_day_limit: toNullableNumber(r.tokens_per_day_limit),
    max_concurrent_requests: toNullableNumber(r.max_concurrent_requests),
    budget_usd: r.budget_usd,
    budget_period: r.budget_period as ApiKeySettings["budget_period"],
    budget_alert_thresholds: r.budget_alert_thresholds,
    allowed_providers: r.allowed_providers,
    allowed_models: r.allowed_models,
    ip_allowlist: r.ip_allowlist,
    metadata: r.metadata,
    mcp_enabled: mcp.enabled,
    mcp_access_mode: mcp.access_mode,
    mcp_servers: mcp.servers,
    mcp_tools: mcp.tools,
    // The old secret is kept after its grace ended (gateways then know it as rotated, not a guess); it no longer works.
    previous_key_expires_at:
      r.previous_key_expires_at && new Date(r.previous_key_expires_at).getTime() > Date.now()
        ? toIso(r.previous_key_expires_at)
        : null,
    last_used_at: toIso(r.last_used_at),
    requests: Number(r.request_count ?? 0),
    input_tokens: Number(r.input_tokens ?? 0),
    output_tokens: Number(r.output_tokens ?? 0),
    spend_usd: Number(r.cost_micro_usd ?? 0) / 1e6,
    created_at: toIso(r.created_at)!,
    updated_at: toIso(r.updated_at)!,
  };
}

/** Column values for the settings, as Kysely writes them. */
function settingsColumns(s: Partial<ApiKeySettings>) {
  const out: Record<string, unknown> = {};
  if (s.expires_at !== undefined) out.expires_at = s.expires_at;
  if (s.rpm_limit !== undefined) out.rpm_limit = s.rpm_limit;
  if (s.tpm_limit !== undefined) out.tpm_limit = s.tpm_limit;
  if (s.budget_usd !== undefined) out.budget_usd = s.budget_usd;
  if (s.tokens_per_day_limit !== undefined) out.tokens_per_day_limit = s.tokens_per_day_limit;
  if (s.max_concurrent_requests !== undefined) out.max_concurrent_requests = s.max_concurrent_requests;
  if (s.budget_period !== undefined) out.budget_period = s.budget_period;
  for (const k of [
    "budget_alert_thresholds",
    "allowed_providers",
    "allowed_models",
    "ip_allowlist",
    "metadata",
  ] as const) {
    if (s[k] !== undefined) out[k] = JSON.stringify(s[k]);
  }
  return out;
}

function mcpJson(s: Pick<ApiKeySettings, "mcp_enabled" | "mcp_access_mode" | "mcp_servers" | "mcp_tools">): string {
  return JSON.stringify({
    enabled: s.mcp_enabled,
    access_mode: s.mcp_access_mode,
    servers: s.mcp_servers,
    tools: s.mcp_tools,
  });
}

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
  const now = new Date();
  const out: ApiKey[] = [];
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
    out.push(...rows.map(toApiKey));
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
    const like = `%${q.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    query = query.where((eb) =>
      eb.or([
        eb("k.name", "ilike", like),
        eb("k.key_prefix", "like", `${q.search!.replace(/[\\%_]/g, (c) => `\\${c}`)}%`),
      ]),
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
