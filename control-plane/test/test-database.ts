import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { migrateToLatest, openDatabase, type DatabaseHandle } from "../src/db/database.js";

/**
 * A migrated database for one suite: a fresh schema on the Postgres of
 * DATABASE_URL when it is set (as CI does), else PGlite in a temp dir.
 */
export async function openTestDatabase(): Promise<DatabaseHandle & { schema: string; cleanup(): Promise<void> }> {
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const schema = databaseUrl ? `t_${Math.random().toString(36).slice(2, 10)}` : "public";
  const dataDir = mkdtempSync(join(tmpdir(), "tollgate-cp-"));
  const handle = await openDatabase({ databaseUrl, schema, dataDir });
  await migrateToLatest(handle.db, schema);
  return {
    ...handle,
    schema,
    async cleanup() {
      await handle.destroy();
      if (databaseUrl) {
        const client = new pg.Client({ connectionString: databaseUrl });
        await client.connect();
        await client.query(`drop schema if exists ${schema} cascade`);
        await client.end();
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
