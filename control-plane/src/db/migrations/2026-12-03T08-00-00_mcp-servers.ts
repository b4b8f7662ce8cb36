import { sql, type Kysely } from "kysely";

// Frozen in time: never edit a shipped migration, add a new one.
export async function up(db: Kysely<any>): Promise<void> {
  // An upstream credential is never stored: only a reference (env:MCP_SECRET_…)
  // that each gateway resolves from its own environment.
  await db.schema
    .createTable("mcp_servers")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("org_id", "text", (c) => c.notNull().references("orgs.id"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("url", "text", (c) => c.notNull())
    .addColumn("description", "text", (c) => c.notNull().defaultTo(""))
    .addColumn("auth_type", "text", (c) => c.notNull().defaultTo("none"))
    .addColumn("auth_header", "text")
    .addColumn("credential_ref", "text")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .addUniqueConstraint("mcp_servers_org_name_key", ["org_id", "name"])
    .addCheckConstraint("mcp_servers_auth_type_check", sql`auth_type in ('none', 'bearer', 'header')`)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("mcp_servers").execute();
}
