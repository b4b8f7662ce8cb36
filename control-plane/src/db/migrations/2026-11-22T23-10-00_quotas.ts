import { sql, type Kysely } from "kysely";

// Frozen in time: never edit a shipped migration, add a new one.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable("api_keys")
    .addColumn("tokens_per_day_limit", "bigint")
    .addColumn("budget_period", "text", (c) => c.notNull().defaultTo("total"))
    .addColumn("max_concurrent_requests", "bigint")
    .execute();
  await db.schema
    .alterTable("users")
    .addColumn("rpm_limit", "bigint")
    .addColumn("tpm_limit", "bigint")
    .addColumn("daily_token_limit", "bigint")
    .execute();

  // One row per fleet-wide counter window: the row lock serializes grants.
  await db.schema
    .createTable("quota_counters")
    .addColumn("org_id", "text", (c) => c.notNull())
    .addColumn("counter", "text", (c) => c.notNull())
    .addColumn("window_key", "text", (c) => c.notNull())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("capacity", "bigint", (c) => c.notNull())
    // Null for windows that never end (total, live).
    .addColumn("window_ends_at", "timestamptz")
    .addPrimaryKeyConstraint("quota_counters_pk", ["org_id", "counter", "window_key"])
    .execute();
  await db.schema.createIndex("quota_counters_ends_idx").on("quota_counters").column("window_ends_at").execute();

  // What each gateway stated it consumed and holds in a counter window.
  await db.schema
    .createTable("quota_holdings")
    .addColumn("org_id", "text", (c) => c.notNull())
    .addColumn("counter", "text", (c) => c.notNull())
    .addColumn("window_key", "text", (c) => c.notNull())
    .addColumn("gateway_id", "text", (c) => c.notNull())
    .addColumn("consumed", "bigint", (c) => c.notNull())
    .addColumn("held", "bigint", (c) => c.notNull())
    // Unused units come back to the fleet when the gateway stops renewing them.
    .addColumn("held_until", "timestamptz", (c) => c.notNull())
    .addPrimaryKeyConstraint("quota_holdings_pk", ["org_id", "counter", "window_key", "gateway_id"])
    .execute();

  // Usage reports already applied, so a resent outbox row counts once.
  await db.schema
    .createTable("usage_reports")
    .addColumn("gateway_id", "text", (c) => c.notNull())
    .addColumn("seq", "bigint", (c) => c.notNull())
    .addColumn("org_id", "text", (c) => c.notNull())
    .addColumn("received_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("usage_reports_pk", ["gateway_id", "seq"])
    .execute();

  await db.schema
    .createTable("usage_daily")
    .addColumn("org_id", "text", (c) => c.notNull())
    .addColumn("day", "text", (c) => c.notNull())
    .addColumn("key_id", "text", (c) => c.notNull())
    .addColumn("user_id", "text", (c) => c.notNull())
    .addColumn("team_id", "text")
    .addColumn("requests", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("input_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("output_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("cost_micro_usd", "bigint", (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint("usage_daily_pk", ["org_id", "key_id", "day"])
    .execute();
  await db.schema.createIndex("usage_daily_team_idx").on("usage_daily").columns(["org_id", "team_id", "day"]).execute();
  await db.schema.createIndex("usage_daily_day_idx").on("usage_daily").columns(["org_id", "day"]).execute();

  await db.schema
    .alterTable("api_keys")
    .addColumn("input_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("output_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("cost_micro_usd", "bigint", (c) => c.notNull().defaultTo(0))
    .execute();

  // Budget alerts fire once per key, period and threshold; delivery is retried until the webhook answers 2xx.
  await db.schema
    .createTable("budget_alerts")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("org_id", "text", (c) => c.notNull())
    .addColumn("key_id", "text", (c) => c.notNull())
    .addColumn("period", "text", (c) => c.notNull())
    .addColumn("threshold", "integer", (c) => c.notNull())
    .addColumn("payload", "jsonb", (c) => c.notNull())
    .addColumn("fired_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("delivered_at", "timestamptz")
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("next_attempt_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("last_error", "text")
    .addUniqueConstraint("budget_alerts_once", ["key_id", "period", "threshold"])
    .execute();
  await db.schema
    .createIndex("budget_alerts_pending_idx")
    .on("budget_alerts")
    .columns(["delivered_at", "next_attempt_at"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("budget_alerts").execute();
  await db.schema.dropTable("usage_daily").execute();
  await db.schema.dropTable("usage_reports").execute();
  await db.schema.dropTable("quota_holdings").execute();
  await db.schema.dropTable("quota_counters").execute();
  for (const c of [
    "input_tokens",
    "output_tokens",
    "cost_micro_usd",
    "tokens_per_day_limit",
    "budget_period",
    "max_concurrent_requests",
  ]) {
    await db.schema.alterTable("api_keys").dropColumn(c).execute();
  }
  for (const c of ["rpm_limit", "tpm_limit", "daily_token_limit"])
    await db.schema.alterTable("users").dropColumn(c).execute();
}
