import { sql, type Kysely } from "kysely";

// Frozen in time: never edit a shipped migration, add a new one.
export async function up(db: Kysely<any>): Promise<void> {
  // Organization-scoped admin tokens: only the SHA-256 of the secret is kept,
  // the prefix identifies a token in lists.
  await db.schema
    .createTable("admin_tokens")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("org_id", "text", (c) => c.notNull().references("orgs.id"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("role", "text", (c) => c.notNull())
    .addColumn("token_hash", "bytea", (c) => c.notNull().unique())
    .addColumn("token_prefix", "text", (c) => c.notNull())
    .addColumn("created_by", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("expires_at", "timestamptz")
    .addColumn("revoked_at", "timestamptz")
    .addColumn("last_used_at", "timestamptz")
    .addCheckConstraint("admin_tokens_role_check", sql`role in ('admin', 'read_only')`)
    .execute();
  await db.schema.createIndex("admin_tokens_org_idx").on("admin_tokens").columns(["org_id", "id"]).execute();

  // Organization members: `admin` acts on the whole organization, `member` on their own keys.
  await db.schema
    .alterTable("users")
    .addColumn("role", "text", (c) => c.notNull().defaultTo("member").check(sql`role in ('admin', 'member')`))
    .execute();

  // One row per SSO sign-in attempt: the PKCE verifier and nonce stay on the server,
  // the signed `state` names the row, and consuming it makes the state single-use.
  await db.schema
    .createTable("sso_logins")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("browser_hash", "bytea", (c) => c.notNull())
    .addColumn("code_verifier", "text", (c) => c.notNull())
    .addColumn("nonce", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("expires_at", "timestamptz", (c) => c.notNull())
    .addColumn("consumed_at", "timestamptz")
    .execute();
  await db.schema.createIndex("sso_logins_expires_idx").on("sso_logins").column("expires_at").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("sso_logins").execute();
  await db.schema.alterTable("users").dropColumn("role").execute();
  await db.schema.dropTable("admin_tokens").execute();
}
