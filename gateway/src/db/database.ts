import { mkdirSync } from "node:fs";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import type { Database } from "better-sqlite3";
import { ConfigError } from "@tollgate/shared";
import { migrate } from "./migrations.js";

export type { Database } from "better-sqlite3";

export interface OpenedDatabase {
  db: Database;
  path: string;
  /** Migrations applied by this open (empty when the schema was current). */
  migrated: string[];
}

/**
 * Opens (creating if needed) `${dataDir}/gateway.db` and brings its schema up
 * to date. WAL + synchronous=NORMAL: a commit survives a process crash, and
 * readers never block the sync writer.
 */
export function openDatabase(dataDir: string): OpenedDatabase {
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (err) {
    throw new ConfigError(`DATA_DIR ${JSON.stringify(dataDir)} cannot be created: ${(err as Error).message}`);
  }
  const path = join(dataDir, "gateway.db");
  const db = new BetterSqlite3(path);
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("busy_timeout = 5000");
    db.pragma("foreign_keys = ON");
    const migrated = migrate(db);
    return { db, path, migrated };
  } catch (err) {
    db.close();
    throw err;
  }
}
