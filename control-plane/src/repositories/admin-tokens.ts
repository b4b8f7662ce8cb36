import type { ColumnType, Selectable } from "kysely";
import type { AdminTokenRecord } from "../auth/admin-tokens.js";
import type { AdminTokenRole } from "../auth/roles.js";
import type { Db } from "../db/database.js";
import { toBuffer, toIso } from "./rows.js";

interface AdminTokensTable {
  id: string;
  org_id: string;
  name: string;
  role: AdminTokenRole;
  token_hash: Uint8Array;
  token_prefix: string;
  created_by: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

/** The table comes with the identity migration; the shared schema stays as it is. */
function tokens(db: Db) {
  return db.withTables<{ admin_tokens: AdminTokensTable }>();
}

/** An admin token as admins see it: never the secret, never its hash. */
export interface AdminToken {
  id: string;
  name: string;
  role: AdminTokenRole;
  token_prefix: string;
  created_by: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

const COLUMNS = [
  "id",
  "name",
  "role",
  "token_prefix",
  "created_by",
  "created_at",
  "expires_at",
  "revoked_at",
  "last_used_at",
] as const;

type AdminTokenRow = Selectable<AdminTokensTable>;

function toAdminToken(r: Pick<AdminTokenRow, (typeof COLUMNS)[number]>): AdminToken {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    token_prefix: r.token_prefix,
    created_by: r.created_by,
    created_at: toIso(r.created_at)!,
    expires_at: toIso(r.expires_at),
    revoked_at: toIso(r.revoked_at),
    last_used_at: toIso(r.last_used_at),
  };
}

export async function insertAdminToken(
  trx: Db,
  input: {
    id: string;
    orgId: string;
    name: string;
    role: AdminTokenRole;
    hash: Buffer;
    prefix: string;
    createdBy: string;
    expiresAt: Date | null;
  },
): Promise<AdminToken> {
  const row = await tokens(trx)
    .insertInto("admin_tokens")
    .values({
      id: input.id,
      org_id: input.orgId,
      name: input.name,
      role: input.role,
      token_hash: input.hash,
      token_prefix: input.prefix,
      created_by: input.createdBy,
      expires_at: input.expiresAt,
      revoked_at: null,
      last_used_at: null,
    })
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
  return toAdminToken(row);
}

export async function listAdminTokens(db: Db, orgId: string): Promise<AdminToken[]> {
  const rows = await tokens(db)
    .selectFrom("admin_tokens")
    .select(COLUMNS)
    .where("org_id", "=", orgId)
    .orderBy("id")
    .execute();
  return rows.map(toAdminToken);
}

export async function getAdminToken(db: Db, orgId: string, id: string): Promise<AdminToken | undefined> {
  const row = await tokens(db)
    .selectFrom("admin_tokens")
    .select(COLUMNS)
    .where("org_id", "=", orgId)
    .where("id", "=", id)
    .executeTakeFirst();
  return row && toAdminToken(row);
}

/** Revokes a live token of the organization; undefined when unknown or already revoked. */
export async function revokeAdminToken(trx: Db, orgId: string, id: string, now: Date): Promise<AdminToken | undefined> {
  const row = await tokens(trx)
    .updateTable("admin_tokens")
    .set({ revoked_at: now })
    .where("org_id", "=", orgId)
    .where("id", "=", id)
    .where("revoked_at", "is", null)
    .returning(COLUMNS)
    .executeTakeFirst();
  return row && toAdminToken(row);
}

const RECORD_COLUMNS = ["id", "org_id", "role", "token_hash", "expires_at", "revoked_at"] as const;

/** The token with this secret hash, live or not (the caller decides). */
export async function findAdminTokenByHash(db: Db, hash: Buffer): Promise<AdminTokenRecord | undefined> {
  const row = await tokens(db)
    .selectFrom("admin_tokens")
    .select(RECORD_COLUMNS)
    .where("token_hash", "=", hash)
    .executeTakeFirst();
  if (!row || !toBuffer(row.token_hash).equals(hash)) return undefined;
  return toRecord(row);
}

/** The token a dashboard session was opened with, live or not. */
export async function findAdminTokenById(db: Db, id: string): Promise<AdminTokenRecord | undefined> {
  const row = await tokens(db)
    .selectFrom("admin_tokens")
    .select(RECORD_COLUMNS)
    .where("id", "=", id)
    .executeTakeFirst();
  return row && toRecord(row);
}

function toRecord(row: Pick<AdminTokenRow, (typeof RECORD_COLUMNS)[number]>): AdminTokenRecord {
  return {
    id: row.id,
    org_id: row.org_id,
    role: row.role,
    expires_at: row.expires_at ? new Date(row.expires_at) : null,
    revoked_at: row.revoked_at ? new Date(row.revoked_at) : null,
  };
}

/** Records use, at most once a minute per token so a busy script costs no write per call. */
export async function touchAdminToken(db: Db, id: string, now: Date): Promise<void> {
  await tokens(db)
    .updateTable("admin_tokens")
    .set({ last_used_at: now })
    .where("id", "=", id)
    .where((eb) => eb.or([eb("last_used_at", "is", null), eb("last_used_at", "<", new Date(now.getTime() - 60_000))]))
    .execute();
}
