import { sql, type Kysely } from "kysely";

// Frozen in time: never edit a shipped migration, add a new one.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable("api_keys")
    .addColumn("rpm_limit", "bigint")
    .addColumn("tpm_limit", "bigint")
    .addColumn("budget_usd", "double precision")
    .addColumn("budget_alert_thresholds", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn("allowed_providers", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn("allowed_models", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn("ip_allowlist", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn("metadata", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn("mcp", "jsonb", (c) =>
      c.notNull().defaultTo(sql`'{"enabled":false,"access_mode":"allow_all","servers":[],"tools":{}}'::jsonb`),
    )
    // Rotation grace: the previous secret's hash works until previous_key_expires_at.
    .addColumn("previous_key_hash", "bytea")
    .addColumn("previous_key_expires_at", "timestamptz")
    // Usage columns, filled by the quotas work.
    .addColumn("last_used_at", "timestamptz")
    .addColumn("request_count", "bigint")
    .execute();
  await db.schema.createIndex("api_keys_org_name_idx").on("api_keys").columns(["org_id", "name", "id"]).execute();

  await db.schema
    .createTable("signing_keys")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("org_id", "text", (c) => c.notNull().references("orgs.id"))
    .addColumn("public_key", "bytea", (c) => c.notNull())
    // PKCS#8, sealed with AES-256-GCM under a key derived from the master key.
    .addColumn("private_key_sealed", "bytea", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable("idempotency_records")
    .addColumn("org_id", "text", (c) => c.notNull().references("orgs.id"))
    .addColumn("scope", "text", (c) => c.notNull())
    // SHA-256 of the client's Idempotency-Key.
    .addColumn("key_hash", "bytea", (c) => c.notNull())
    .addColumn("target_id", "text", (c) => c.notNull())
    // The non-secret part of the first answer.
    .addColumn("response", "jsonb", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("idempotency_records_pk", ["org_id", "scope", "key_hash"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("idempotency_records").execute();
  await db.schema.dropTable("signing_keys").execute();
  await db.schema.dropIndex("api_keys_org_name_idx").execute();
  for (const column of [
    "rpm_limit",
    "tpm_limit",
    "budget_usd",
    "budget_alert_thresholds",
    "allowed_providers",
    "allowed_models",
    "ip_allowlist",
    "metadata",
    "mcp",
    "previous_key_hash",
    "previous_key_expires_at",
    "last_used_at",
    "request_count",
  ]) {
    await db.schema.alterTable("api_keys").dropColumn(column).execute();
  }
}
