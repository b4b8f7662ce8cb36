import type { Db } from "../db/database.js";
import type { ApiKeyRow } from "../db/schema.js";
import type { KeySyncRecord } from "./change-log.js";
import { toBuffer, toIso } from "./rows.js";

export type KeyStatusName = "active" | "inactive" | "expired" | "revoked";

/** Key metadata as admins see it: never the key, never its hash. */
export interface ApiKey {
  id: string;
  name: string;
  key_prefix: string;
  user_id: string;
  status: KeyStatusName;
  expires_at: string | null;
  created_at: string;
  updated_at: string;
}

function toApiKey(r: ApiKeyRow): ApiKey {
  return {
    id: r.id,
    name: r.name,
    key_prefix: r.key_prefix,
    user_id: r.user_id,
    status: r.status as KeyStatusName,
    expires_at: toIso(r.expires_at),
    created_at: toIso(r.created_at)!,
    updated_at: toIso(r.updated_at)!,
  };
}

export async function insertApiKey(
  trx: Db,
  input: { id: string; orgId: string; userId: string; name: string; hash: Buffer; prefix: string; expiresAt: Date | null },
): Promise<ApiKey> {
  const now = new Date();
  const row = await trx
    .insertInto("api_keys")
    .values({
      id: input.id,
      org_id: input.orgId,
      user_id: input.userId,
      name: input.name,
      key_hash: input.hash,
      key_prefix: input.prefix,
      status: "active",
      expires_at: input.expiresAt,
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toApiKey(row);
}

export interface NewApiKey {
  id: string;
  orgId: string;
  userId: string;
  name: string;
  hash: Buffer;
  prefix: string;
  expiresAt: Date | null;
}

/** Inserts many keys with multi-row statements (1,000 rows each). */
export async function insertApiKeys(trx: Db, input: NewApiKey[]): Promise<ApiKey[]> {
  const now = new Date();
  const out: ApiKey[] = [];
  for (let i = 0; i < input.length; i += 1000) {
    const rows = await trx
      .insertInto("api_keys")
      .values(
        input.slice(i, i + 1000).map((k) => ({
          id: k.id,
          org_id: k.orgId,
          user_id: k.userId,
          name: k.name,
          key_hash: k.hash,
          key_prefix: k.prefix,
          status: "active",
          expires_at: k.expiresAt,
          created_at: now,
          updated_at: now,
        })),
      )
      .returningAll()
      .execute();
    out.push(...rows.map(toApiKey));
  }
  return out;
}

export async function getApiKey(db: Db, orgId: string, id: string): Promise<ApiKey | undefined> {
  const row = await db.selectFrom("api_keys").selectAll().where("org_id", "=", orgId).where("id", "=", id).executeTakeFirst();
  return row && toApiKey(row);
}

export async function deleteApiKey(trx: Db, orgId: string, id: string): Promise<ApiKey | undefined> {
  const row = await trx.deleteFrom("api_keys").where("org_id", "=", orgId).where("id", "=", id).returningAll().executeTakeFirst();
  return row && toApiKey(row);
}

export async function listApiKeys(
  db: Db,
  orgId: string,
  page: { after?: string | undefined; limit: number; userId?: string | undefined },
): Promise<ApiKey[]> {
  let q = db.selectFrom("api_keys").selectAll().where("org_id", "=", orgId);
  if (page.userId) q = q.where("user_id", "=", page.userId);
  if (page.after) q = q.where("id", ">", page.after);
  const rows = await q.orderBy("id").limit(page.limit).execute();
  return rows.map(toApiKey);
}

function keySyncQuery(db: Db, orgId: string) {
  return db
    .selectFrom("api_keys as k")
    .innerJoin("users as u", "u.id", "k.user_id")
    .select([
      "k.id",
      "k.key_hash",
      "k.key_prefix",
      "k.name",
      "k.user_id",
      "u.team_id",
      "k.status",
      "k.expires_at",
      "k.created_at",
    ])
    .where("k.org_id", "=", orgId);
}

type KeySyncRow = Awaited<ReturnType<ReturnType<typeof keySyncQuery>["executeTakeFirstOrThrow"]>>;

function toSyncRecord(r: KeySyncRow): KeySyncRecord {
  return {
    id: r.id,
    key_hash: toBuffer(r.key_hash).toString("hex"),
    key_prefix: r.key_prefix,
    name: r.name,
    user_id: r.user_id,
    team_id: r.team_id,
    status: r.status,
    expires_at: toIso(r.expires_at),
    created_at: toIso(r.created_at)!,
  };
}

/** The synced state of one key, read inside the writing transaction. */
export async function keySyncRecord(trx: Db, orgId: string, id: string): Promise<KeySyncRecord> {
  return toSyncRecord(await keySyncQuery(trx, orgId).where("k.id", "=", id).executeTakeFirstOrThrow());
}

/** The synced state of many keys, in id order. */
export async function keySyncRecords(trx: Db, orgId: string, ids: string[]): Promise<KeySyncRecord[]> {
  const out: KeySyncRecord[] = [];
  for (let i = 0; i < ids.length; i += 1000) {
    const rows = await keySyncQuery(trx, orgId).where("k.id", "in", ids.slice(i, i + 1000)).orderBy("k.id").execute();
    out.push(...rows.map(toSyncRecord));
  }
  return out;
}

/** Every key of the organization, for a snapshot (call inside a repeatable-read transaction). */
export async function allKeySyncRecords(trx: Db, orgId: string): Promise<KeySyncRecord[]> {
  const rows = await keySyncQuery(trx, orgId).orderBy("k.id").execute();
  return rows.map(toSyncRecord);
}
