import { sql, type Kysely } from "kysely";

// Frozen in time: never edit a shipped migration, add a new one.
export async function up(db: Kysely<any>): Promise<void> {
  // Dashboard sessions: only SHA-256 hashes of the cookie and CSRF token are kept,
  // so a database dump opens no session.
  await db.schema
    .createTable("dashboard_sessions")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("token_hash", "bytea", (c) => c.notNull().unique())
    .addColumn("csrf_token_hash", "bytea", (c) => c.notNull())
    .addColumn("actor_kind", "text", (c) => c.notNull())
    .addColumn("actor_id", "text")
    // Null for the master key, which acts on every organization.
    .addColumn("org_id", "text")
    .addColumn("role", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("last_seen_at", "timestamptz", (c) => c.notNull())
    .addColumn("expires_at", "timestamptz", (c) => c.notNull())
    .addCheckConstraint("dashboard_sessions_actor_kind_check", sql`actor_kind in ('master', 'admin_token', 'user')`)
    .addCheckConstraint("dashboard_sessions_role_check", sql`role in ('admin', 'read_only', 'member')`)
    .execute();
  await db.schema.createIndex("dashboard_sessions_expires_idx").on("dashboard_sessions").column("expires_at").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("dashboard_sessions").execute();
}
