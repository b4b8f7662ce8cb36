import { sql } from "kysely";
import type { Db } from "../db/database.js";
import type { ApiKeyRow } from "../db/schema.js";
import type { KeySyncRecord } from "./change-log.js";
import { toBuffer, toIso, toNullableNumber } from "./rows.js";

/*
 * A key as the gateways receive it: the key row joined with its owner's and
 * team's limits, which travel with the key.
 */

/**
 * The key columns a gateway receives, and no more: usage counters and timestamps the gateways
 * never see would only cost row parsing (a Date per timestamp) in every snapshot.
 */
const SYNCED_KEY_COLUMNS = [
  ...(["id", "key_hash", "key_prefix", "name", "user_id", "status", "expires_at", "created_at"] as const),
  ...(["rpm_limit", "tpm_limit", "tokens_per_day_limit", "max_concurrent_requests"] as const),
  ...(["budget_usd", "budget_period", "budget_alert_thresholds"] as const),
  ...(["allowed_providers", "allowed_models", "ip_allowlist", "metadata", "mcp"] as const),
  ...(["previous_key_hash", "previous_key_expires_at"] as const),
] as const satisfies readonly (keyof ApiKeyRow)[];

/** What a key's record carries of its owner: one list, so a record built at create equals the one read later. */
const OWNER_COLUMNS = [
  "u.team_id",
  "u.rpm_limit as user_rpm_limit",
  "u.tpm_limit as user_tpm_limit",
  "u.daily_token_limit as user_daily_token_limit",
  "t.tpm_limit as team_tpm_limit",
  "t.daily_token_limit as team_daily_token_limit",
] as const;

function keySyncQuery(db: Db, orgId: string) {
  return db
    .selectFrom("api_keys as k")
    .innerJoin("users as u", "u.id", "k.user_id")
    .leftJoin("teams as t", "t.id", "u.team_id")
    .select(SYNCED_KEY_COLUMNS.map((c) => `k.${c}` as const))
    .select(OWNER_COLUMNS)
    .where("k.org_id", "=", orgId);
}

/**
 * The same record, read by a write that emits a key's record on its own (a create, a key's
 * own change): the owner's user and team rows are share-locked until commit. A concurrent
 * change of that user's or team's limits then commits either before this read (which waits
 * for it and sees the new limits) or after this write (and its re-sync of the owner's keys
 * sees this key), never in between, where the key would go out with the old limits at a
 * later revision. Only share locks are taken, and on owner rows only; the owner changes that
 * re-sync keys read them without locks, so no two writes wait on each other in a circle.
 */
/**
 * Share-locks the owners (users, and their teams) of the keys a write is about to emit on
 * their own (a create, a key's own change), until commit; the records are read after, by
 * another statement, so they see the owners' latest committed limits. A concurrent change of
 * that user's or team's limits then commits either before (this waits for it, and the read
 * sees it) or after this write (and its re-sync of the owner's keys sees this key), never in
 * between, where the key would go out with the old limits at a later revision. The team is
 * found through the locked user row, so a user moved to another team meanwhile locks the new
 * one. Only share locks, on owner rows only: the owner changes that re-sync keys read them
 * without locks, so no two writes wait on each other in a circle.
 */
const lockOwnersOf = (trx: Db, orgId: string, keyIds: string[]) => lockOwners(trx, orgId, { keyIds });

async function lockOwners(trx: Db, orgId: string, owners: { userIds: string[] } | { keyIds: string[] }): Promise<void> {
  const users =
    "userIds" in owners
      ? sql`select u.id, u.team_id from users u where u.org_id = ${orgId} and u.id = any(${owners.userIds}::text[]) for share`
      : sql`select u.id, u.team_id from users u join api_keys k on k.user_id = u.id
             where k.org_id = ${orgId} and k.id = any(${owners.keyIds}::text[]) for share of u`;
  await sql`with u as (${users}) select t.id from teams t where t.id in (select team_id from u) for share`.execute(trx);
}

type KeySyncRow = Pick<ApiKeyRow, (typeof SYNCED_KEY_COLUMNS)[number]> & {
  team_id: string | null;
  user_rpm_limit: string | number | null;
  user_tpm_limit: string | number | null;
  user_daily_token_limit: string | number | null;
  team_tpm_limit: string | number | null;
  team_daily_token_limit: string | number | null;
};

function toSyncRecord(r: KeySyncRow): KeySyncRecord {
  const graceActive = r.previous_key_hash && r.previous_key_expires_at;
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
    rpm_limit: toNullableNumber(r.rpm_limit),
    tpm_limit: toNullableNumber(r.tpm_limit),
    tokens_per_day_limit: toNullableNumber(r.tokens_per_day_limit),
    max_concurrent_requests: toNullableNumber(r.max_concurrent_requests),
    budget_usd: r.budget_usd,
    budget_period: r.budget_period,
    budget_alert_thresholds: r.budget_alert_thresholds,
    owner_limits: {
      user_rpm_limit: toNullableNumber(r.user_rpm_limit),
      user_tpm_limit: toNullableNumber(r.user_tpm_limit),
      user_daily_token_limit: toNullableNumber(r.user_daily_token_limit),
      team_tpm_limit: toNullableNumber(r.team_tpm_limit),
      team_daily_token_limit: toNullableNumber(r.team_daily_token_limit),
    },
    allowed_providers: r.allowed_providers,
    allowed_models: r.allowed_models,
    ip_allowlist: r.ip_allowlist,
    metadata: r.metadata,
    mcp: r.mcp,
    previous_key_hash: graceActive ? toBuffer(r.previous_key_hash!).toString("hex") : null,
    previous_key_expires_at: graceActive ? toIso(r.previous_key_expires_at) : null,
  };
}

/** The synced state of one key, read inside the writing transaction. */
export async function keySyncRecord(trx: Db, orgId: string, id: string): Promise<KeySyncRecord> {
  await lockOwners(trx, orgId, { keyIds: [id] });
  return toSyncRecord((await keySyncQuery(trx, orgId).where("k.id", "=", id).executeTakeFirstOrThrow()) as KeySyncRow);
}

/** A key's owner as its sync record and admin view need them: the user's and team's limits, and the user's external id. */
export type KeyOwnerRow = Omit<KeySyncRow, keyof ApiKeyRow> & { owner: string };

/**
 * The owner of a new key, read with the check that the user exists: one
 * query, so a create builds the key's sync record from the row it inserted.
 */
export async function keyOwner(trx: Db, orgId: string, userId: string): Promise<KeyOwnerRow | undefined> {
  // Locked first: the new key's record carries the limits it commits with (see lockOwners).
  await lockOwners(trx, orgId, { userIds: [userId] });
  return trx
    .selectFrom("users as u")
    .leftJoin("teams as t", "t.id", "u.team_id")
    .select(OWNER_COLUMNS)
    .select("u.external_id as owner")
    .where("u.org_id", "=", orgId)
    .where("u.id", "=", userId)
    .executeTakeFirst();
}

/** The synced state of a key just written, from its row and its owner (the same record `keySyncRecord` reads). */
export function keySyncRecordOf(key: ApiKeyRow, owner: KeyOwnerRow): KeySyncRecord {
  const { owner: _externalId, ...limits } = owner;
  return toSyncRecord({ ...key, ...limits });
}

/** The synced state of many keys, in id order. */
export async function keySyncRecords(
  trx: Db,
  orgId: string,
  ids: string[],
  { lockOwners = false }: { lockOwners?: boolean } = {},
): Promise<KeySyncRecord[]> {
  const out: KeySyncRecord[] = [];
  if (lockOwners) for (let i = 0; i < ids.length; i += 1000) await lockOwnersOf(trx, orgId, ids.slice(i, i + 1000));
  for (let i = 0; i < ids.length; i += 1000) {
    const rows = await keySyncQuery(trx, orgId)
      .where("k.id", "in", ids.slice(i, i + 1000))
      .orderBy("k.id")
      .execute();
    out.push(...rows.map((r) => toSyncRecord(r as KeySyncRow)));
  }
  return out;
}

/** How many keys a snapshot of the organization holds (call inside its repeatable-read transaction). */
export async function countKeySyncRecords(trx: Db, orgId: string): Promise<number> {
  // Same join as keySyncQuery: a key whose user is gone is not synced, so it is not counted either.
  const row = await trx
    .selectFrom("api_keys as k")
    .innerJoin("users as u", "u.id", "k.user_id")
    .select((eb) => eb.fn.countAll<string | number>().as("n"))
    .where("k.org_id", "=", orgId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * Every key of the organization, one page of at most `pageSize` keys at a time, in id order.
 * Call inside one repeatable-read transaction: every page then reads the same cut.
 *
 * A cursor, not keyset pagination (`id > last … limit n`): right after a bulk load, before
 * autovacuum has analyzed api_keys, the planner costs each keyset page as a bitmap scan and
 * sort of every remaining key, which made the read quadratic (over 60 ms a page at 100,000
 * keys). A cursor plans and runs the query once and hands its rows over page by page.
 */
export async function* keySyncRecordPages(trx: Db, orgId: string, pageSize: number): AsyncGenerator<KeySyncRecord[]> {
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new Error(`invalid snapshot page size ${pageSize}`);
  // Closed by the transaction's end (commit or rollback), so a stream that stops early leaks nothing.
  await sql`declare snapshot_keys no scroll cursor for ${keySyncQuery(trx, orgId).orderBy("k.id")}`.execute(trx);
  for (;;) {
    const { rows } = await sql<KeySyncRow>`fetch forward ${sql.raw(String(pageSize))} from snapshot_keys`.execute(trx);
    if (rows.length > 0) yield rows.map(toSyncRecord);
    if (rows.length < pageSize) return;
  }
}
