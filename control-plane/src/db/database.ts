import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { pg_trgm } from "@electric-sql/pglite/contrib/pg_trgm";
import { Kysely, Migrator, PostgresDialect, sql, type MigrationResultSet } from "kysely";
import pg from "pg";
import type { Logger } from "@tollgate/shared";
import { PGliteDialect } from "./pglite-dialect.js";
import { createDatabaseHealth, watchPool, type DatabaseHealth } from "./database-health.js";
import { migrations } from "./migrations/index.js";
import type { Database } from "./schema.js";

export type Db = Kysely<Database>;

export interface DatabaseHandle {
  db: Db;
  kind: "postgres" | "pglite";
  /** Where the data lives, for the start-up log line (no credentials). */
  location: string;
  /** Postgres only: a pool for LISTEN and schema set-up. */
  pool?: pg.Pool;
  /** Connection health, fed by the pool's error listeners and by failed queries. */
  health: DatabaseHealth;
  destroy(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl?: string | undefined;
  schema: string;
  dataDir: string;
  /** Where connection losses are logged; silent when absent. */
  logger?: Logger;
}

const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

export async function openDatabase(options: DatabaseOptions): Promise<DatabaseHandle> {
  if (!SCHEMA_RE.test(options.schema)) throw new Error(`invalid schema name ${JSON.stringify(options.schema)}`);
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: 10,
      options: `-c search_path=${options.schema}`,
      // Fail fast while the server is away instead of queueing requests behind a dead host.
      connectionTimeoutMillis: 5_000,
      // Lets operators (and the fault tests) find this service's backends in pg_stat_activity.
      application_name: `tollgate-cp:${options.schema}`,
    });
    const health = createDatabaseHealth(options.logger);
    watchPool(pool, health);
    await pool.query(`create schema if not exists ${options.schema}`);
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    const url = new URL(options.databaseUrl);
    return {
      db,
      kind: "postgres",
      pool,
      health,
      location: `postgres://${url.host}${url.pathname} (schema ${options.schema})`,
      destroy: () => db.destroy(),
    };
  }
  const dir = join(options.dataDir, "pglite");
  mkdirSync(dir, { recursive: true });
  // pg_trgm backs the keys page's name search (migration key-name-search).
  const pglite = new PGlite(dir, { extensions: { pg_trgm } });
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  return {
    db,
    kind: "pglite",
    location: dir,
    health: createDatabaseHealth(options.logger),
    destroy: () => db.destroy(),
  };
}

export async function migrateToLatest(db: Db, schema: string): Promise<MigrationResultSet> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableSchema: schema,
  });
  // Kysely's migrator looks for its tables by listing every table of the database. A schema
  // dropped meanwhile by someone else (another tenant, a test suite sharing the server) fails
  // that catalog query with 3F000 (its schema) or 42P01 (one of its tables, e.g.
  // "scan_….kysely_migration") naming that other schema: harmless to us, so try again.
  for (let attempt = 1; ; attempt++) {
    const result = await migrator.migrateToLatest();
    if (!result.error) return result;
    const err = result.error as { code?: unknown; message?: unknown };
    const otherSchemaGone =
      (err.code === "3F000" || err.code === "42P01") &&
      typeof err.message === "string" &&
      !err.message.includes(`"${schema}"`) &&
      !err.message.includes(`"${schema}.`);
    if (!otherSchemaGone || attempt >= 5) throw result.error;
    await new Promise((r) => setTimeout(r, 100 * attempt));
  }
}

/** Used by tests and readiness: a trivial round trip. */
export async function ping(db: Db): Promise<void> {
  await sql`select 1`.execute(db);
}
