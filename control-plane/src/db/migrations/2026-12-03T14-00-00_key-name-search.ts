import { sql, type Kysely } from "kysely";

// Frozen in time: never edit a shipped migration, add a new one.
// The keys page searches names by substring or prefixes by their start
// (`name ILIKE '%…%' OR key_prefix LIKE '…%'`): without indexes for both, that
// reads every key of the organization (120–165 ms at 100,000 keys on Postgres,
// 265–618 ms on PGlite). A trigram GIN index on the name and a pattern btree on
// the prefix let the planner OR two index scans (bench/README.md, "keys list").
//
// pg_trgm is a trusted extension (Postgres 13+): a role with CREATE on the
// database may install it. It is installed once per database, in `public`,
// so a schema dropped later (a test's, a bench's) cannot take it along with
// the indexes of the other schemas. Where it is already installed, its schema
// is used; where it cannot be installed, the search stays a scan and nothing
// fails (the embedded PGlite loads it at open). The indexes are built in the
// migration's transaction, so writes to api_keys wait for the build during the
// upgrade: seconds at 100,000 keys.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index api_keys_prefix_pattern_idx on api_keys (key_prefix text_pattern_ops)`.execute(db);
  const schema = await trigramSchema(db);
  if (schema === null) return;
  await sql`create index api_keys_name_trgm_idx on api_keys using gin (name ${sql.id(schema)}.gin_trgm_ops)`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists api_keys_name_trgm_idx`.execute(db);
  await sql`drop index if exists api_keys_prefix_pattern_idx`.execute(db);
}

async function trigramSchema(db: Kysely<any>): Promise<string | null> {
  // Schemas of one database migrate under separate locks: serialize the install among them.
  await sql`select pg_advisory_xact_lock(hashtext('tollgate:pg_trgm'))`.execute(db);
  const installed = await sql<{ schema: string }>`
    select n.nspname as schema from pg_extension e join pg_namespace n on n.oid = e.extnamespace
    where e.extname = 'pg_trgm'`.execute(db);
  if (installed.rows[0]) return installed.rows[0].schema;
  const can = await sql<{ ok: boolean }>`
    select exists (select 1 from pg_available_extensions where name = 'pg_trgm')
      and exists (select 1 from pg_namespace where nspname = 'public')
      and (has_database_privilege(current_database(), 'CREATE')
           or exists (select 1 from pg_roles where rolname = current_user and rolsuper)) as ok`.execute(db);
  if (!can.rows[0]?.ok) return null;
  await sql`create extension if not exists pg_trgm with schema public`.execute(db);
  return "public";
}
