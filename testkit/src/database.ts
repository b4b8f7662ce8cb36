import { randomBytes } from "node:crypto";
import pg from "pg";

export interface TestDatabase {
  /** The Postgres URL (process.env.DATABASE_URL). */
  url: string;
  /** A schema unique to this suite, e.g. `t_3f9a1c0b7d2e`; the control plane creates it. */
  schema: string;
  /** DROP SCHEMA ... CASCADE. Safe to call twice or when it was never created. */
  drop(): Promise<void>;
}

/**
 * One Postgres schema per suite when DATABASE_URL is set (CI); undefined
 * otherwise, in which case the control plane uses embedded PGlite.
 *
 *   const db = testDatabase();
 *   startControlPlane({ ..., databaseUrl: db?.url, databaseSchema: db?.schema });
 *   afterAll(() => db?.drop());
 */
export function testDatabase(prefix = "t"): TestDatabase | undefined {
  const url = process.env.DATABASE_URL;
  if (!url) return undefined;
  if (!/^[a-z_][a-z0-9_]*$/.test(prefix))
    throw new Error(`testDatabase: prefix must be a lower-case SQL identifier, got ${prefix}`);
  const schema = `${prefix}_${randomBytes(6).toString("hex")}`;
  return {
    url,
    schema,
    drop: async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}
