import type { Db } from "../db/database.js";
import { toBuffer, toIso } from "./rows.js";

export interface GatewayToken {
  id: string;
  name: string;
  token_prefix: string;
  created_at: string;
  revoked_at: string | null;
}

export async function insertGatewayToken(
  trx: Db,
  input: { id: string; orgId: string; name: string; hash: Buffer; prefix: string },
): Promise<GatewayToken> {
  const row = await trx
    .insertInto("gateway_tokens")
    .values({
      id: input.id,
      org_id: input.orgId,
      name: input.name,
      token_hash: input.hash,
      token_prefix: input.prefix,
      revoked_at: null,
    })
    .returning(["id", "name", "token_prefix", "created_at", "revoked_at"])
    .executeTakeFirstOrThrow();
  return {
    id: row.id,
    name: row.name,
    token_prefix: row.token_prefix,
    created_at: toIso(row.created_at)!,
    revoked_at: toIso(row.revoked_at),
  };
}

export async function listGatewayTokens(db: Db, orgId: string): Promise<GatewayToken[]> {
  const rows = await db
    .selectFrom("gateway_tokens")
    .select(["id", "name", "token_prefix", "created_at", "revoked_at"])
    .where("org_id", "=", orgId)
    .orderBy("id")
    .execute();
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    token_prefix: r.token_prefix,
    created_at: toIso(r.created_at)!,
    revoked_at: toIso(r.revoked_at),
  }));
}

export async function revokeGatewayToken(trx: Db, orgId: string, id: string): Promise<GatewayToken | undefined> {
  const row = await trx
    .updateTable("gateway_tokens")
    .set({ revoked_at: new Date() })
    .where("org_id", "=", orgId)
    .where("id", "=", id)
    .where("revoked_at", "is", null)
    .returning(["id", "name", "token_prefix", "created_at", "revoked_at"])
    .executeTakeFirst();
  return (
    row && {
      id: row.id,
      name: row.name,
      token_prefix: row.token_prefix,
      created_at: toIso(row.created_at)!,
      revoked_at: toIso(row.revoked_at),
    }
  );
}

/** The live token with this hash, or undefined. */
export async function findActiveTokenByHash(db: Db, hash: Buffer): Promise<{ id: string; orgId: string } | undefined> {
  const row = await db
    .selectFrom("gateway_tokens")
    .select(["id", "org_id", "token_hash"])
    .where("token_hash", "=", hash)
    .where("revoked_at", "is", null)
    .executeTakeFirst();
  if (!row || !toBuffer(row.token_hash).equals(hash)) return undefined;
  return { id: row.id, orgId: row.org_id };
}
