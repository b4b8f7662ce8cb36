import { sql, type Kysely } from "kysely";

// Frozen in time: never edit a shipped migration, add a new one.
// The keys page sorts an organization's keys by created, requests or status and
// pages on (sort value, id): with these, a page of 100,000 keys is an index walk
// of one page instead of a sort of them all (bench/README.md, "keys list").
// Name already has api_keys_org_name_idx; owner sorts walk users' unique
// (org_id, external_id) index.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createIndex("api_keys_org_created_idx")
    .on("api_keys")
    .columns(["org_id", "created_at", "id"])
    .execute();
  await sql`create index api_keys_org_requests_idx on api_keys (org_id, (coalesce(request_count, 0)), id)`.execute(db);
  await db.schema.createIndex("api_keys_org_status_idx").on("api_keys").columns(["org_id", "status", "id"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const name of ["api_keys_org_created_idx", "api_keys_org_requests_idx", "api_keys_org_status_idx"]) {
    await db.schema.dropIndex(name).execute();
  }
}
