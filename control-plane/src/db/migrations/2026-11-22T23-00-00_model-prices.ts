import { sql, type Kysely } from "kysely";

// Frozen in time: never edit a shipped migration, add a new one.
export async function up(db: Kysely<any>): Promise<void> {
  // USD per million tokens per (provider, model) and organization. `model` is an
  // exact name or a prefix rule ending in `*`; provider `*` applies to any provider.
  await db.schema
    .createTable("model_prices")
    .addColumn("org_id", "text", (c) => c.notNull().references("orgs.id"))
    .addColumn("provider", "text", (c) => c.notNull())
    .addColumn("model", "text", (c) => c.notNull())
    .addColumn("input_usd_per_mtok", "double precision", (c) => c.notNull())
    .addColumn("output_usd_per_mtok", "double precision", (c) => c.notNull())
    .addColumn("cache_read_usd_per_mtok", "double precision")
    .addColumn("cache_write_usd_per_mtok", "double precision")
    // 'default': seeded from the bundled price dataset; 'override': set by an admin, never overwritten by seeding.
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("model_prices_pk", ["org_id", "provider", "model"])
    .addCheckConstraint("model_prices_source_check", sql`source in ('default', 'override')`)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("model_prices").execute();
}
