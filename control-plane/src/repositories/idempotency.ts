import { createHash } from "node:crypto";
import type { Db } from "../db/database.js";

export interface IdempotencyRecord {
  targetId: string;
  response: Record<string, unknown>;
}

export function hashIdempotencyKey(key: string): Buffer {
  return createHash("sha256").update(key).digest();
}

/** The first answer recorded under this key, locking nothing. */
export async function findIdempotencyRecord(
  db: Db,
  orgId: string,
  scope: string,
  key: string,
): Promise<IdempotencyRecord | undefined> {
  const row = await db
    .selectFrom("idempotency_records")
    .select(["target_id", "response"])
    .where("org_id", "=", orgId)
    .where("scope", "=", scope)
    .where("key_hash", "=", hashIdempotencyKey(key))
    .executeTakeFirst();
  return row && { targetId: row.target_id, response: row.response as Record<string, unknown> };
}

export async function saveIdempotencyRecord(
  trx: Db,
  orgId: string,
  scope: string,
  key: string,
  record: IdempotencyRecord,
): Promise<void> {
  await trx
    .insertInto("idempotency_records")
    .values({
      org_id: orgId,
      scope,
      key_hash: hashIdempotencyKey(key),
      target_id: record.targetId,
      response: JSON.stringify(record.response),
    })
    .execute();
}
