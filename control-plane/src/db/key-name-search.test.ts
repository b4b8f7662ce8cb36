import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestDatabase } from "../../test/test-database.js";

let db: Awaited<ReturnType<typeof openTestDatabase>>;

beforeAll(async () => {
  db = await openTestDatabase();
});

afterAll(async () => {
  await db?.cleanup();
});

describe("key name search index", () => {
  it("is a trigram GIN index on api_keys.name, on PGlite and on Postgres", async () => {
    const found = await sql<{ indexdef: string }>`
      select indexdef from pg_indexes where schemaname = ${db.schema} and indexname = 'api_keys_name_trgm_idx'`.execute(
      db.db,
    );
    expect(found.rows).toHaveLength(1);
    expect(found.rows[0]!.indexdef).toMatch(/USING gin \(name public\.gin_trgm_ops\)|USING gin \(name gin_trgm_ops\)/);
  });
});
