import type { ColumnType } from "kysely";
import type { Db } from "../db/database.js";

interface SsoLoginsTable {
  id: string;
  browser_hash: Uint8Array;
  code_verifier: string;
  nonce: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  expires_at: Date;
  consumed_at: Date | null;
}

function logins(db: Db) {
  return db.withTables<{ sso_logins: SsoLoginsTable }>();
}

export interface SsoLogin {
  id: string;
  browserHash: Buffer;
  codeVerifier: string;
  nonce: string;
  expiresAt: Date;
}

export async function insertSsoLogin(db: Db, login: SsoLogin, now: Date): Promise<void> {
  // Expired attempts go as new ones come (their state is refused as expired before any
  // lookup), so the table holds only the sign-ins of the last ten minutes.
  await logins(db).deleteFrom("sso_logins").where("expires_at", "<=", now).execute();
  await logins(db)
    .insertInto("sso_logins")
    .values({
      id: login.id,
      browser_hash: login.browserHash,
      code_verifier: login.codeVerifier,
      nonce: login.nonce,
      expires_at: login.expiresAt,
      consumed_at: null,
    })
    .execute();
}

/**
 * Marks the login used and returns it, exactly once: a second callback with the
 * same state (a replay) finds it consumed and gets undefined.
 */
export async function consumeSsoLogin(db: Db, id: string, now: Date): Promise<SsoLogin | undefined> {
  const row = await logins(db)
    .updateTable("sso_logins")
    .set({ consumed_at: now })
    .where("id", "=", id)
    .where("consumed_at", "is", null)
    .where("expires_at", ">", now)
    .returning(["id", "browser_hash", "code_verifier", "nonce", "expires_at"])
    .executeTakeFirst();
  if (!row) return undefined;
  const hash = row.browser_hash;
  return {
    id: row.id,
    browserHash: Buffer.isBuffer(hash) ? hash : Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength),
    codeVerifier: row.code_verifier,
    nonce: row.nonce,
    expiresAt: new Date(row.expires_at),
  };
}
