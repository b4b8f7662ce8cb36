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

export const DATABASE_FILE = "gateway.db";

/**
 * The cache file is damaged: not a database, corrupt pages, failing
 * integrity check or migrations. Moving it aside and starting empty is the
 * cure (see openStoreWithRecovery); the message says what was found.
 */
class CacheDamageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CacheDamageError";
  }
}

/**
 * SQLite result codes that say something about the machine, not the file
 * (permissions, disk full, locked by another process, I/O): moving the file
 * aside would not help and could throw away a good cache.
 */
const ENVIRONMENTAL = /^SQLITE_(CANTOPEN|PERM|READONLY|BUSY|LOCKED|FULL|NOMEM|AUTH|IOERR(?!_SHORT_READ))/;

function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_") ? code : undefined;
}

/**
 * Why `err` means the cache file is damaged, or undefined when it does not
 * (the error is about the environment, or not from SQLite at all).
 */
export function damageReason(err: unknown): string | undefined {
  if (err instanceof CacheDamageError) return err.message;
  const code = sqliteCode(err);
  if (code === undefined || ENVIRONMENTAL.test(code)) return undefined;
  return `${code}: ${(err as Error).message}`;
}

/**
 * Opens (creating if needed) `${dataDir}/gateway.db`, checks it with
 * `PRAGMA quick_check` and brings its schema up to date. WAL +
 * synchronous=NORMAL: a commit survives a process crash, and readers never
 * block the sync writer. A damaged file throws a CacheDamageError or an
 * SQLITE_CORRUPT / SQLITE_NOTADB error (see damageReason).
 */
export function openDatabase(dataDir: string): OpenedDatabase {
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (err) {
    throw new ConfigError(`DATA_DIR ${JSON.stringify(dataDir)} cannot be created: ${(err as Error).message}`);
  }
  const path = join(dataDir, DATABASE_FILE);
  let db: Database;
  try {
    db = new BetterSqlite3(path);
  } catch (err) {
    if (damageReason(err) !== undefined) throw err;
    throw new ConfigError(`DATA_DIR ${JSON.stringify(dataDir)}: cannot open ${path}: ${(err as Error).message}`);
  }
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("busy_timeout = 5000");
    db.pragma("foreign_keys = ON");
    // quick_check reads every page through this connection's cache, and the
    // request log's pages are not read again here: a 2 MB cache for the check
    // keeps RSS from growing by up to 16 MB (better-sqlite3's default) at start.
    const cacheSize = db.pragma("cache_size", { simple: true }) as number;
    db.pragma("cache_size = -2048");
    const problems = (db.pragma("quick_check") as Array<{ quick_check: string }>).map((r) => r.quick_check);
    db.pragma("shrink_memory");
    db.pragma(`cache_size = ${cacheSize}`);
    if (problems.length !== 1 || problems[0] !== "ok") {
      const shown = problems.slice(0, 3).join("; ");
      throw new CacheDamageError(
        `integrity check failed: ${shown}${problems.length > 3 ? `; and ${problems.length - 3} more` : ""}`,
      );
    }
    let migrated: string[];
    try {
      migrated = migrate(db);
    } catch (err) {
      const code = sqliteCode(err);
      if (code !== undefined && ENVIRONMENTAL.test(code)) throw err;
      throw new CacheDamageError(`schema migration failed: ${code ? `${code}: ` : ""}${(err as Error).message}`, {
        cause: err,
      });
    }
    return { db, path, migrated };
  } catch (err) {
    db.close();
    throw err;
  }
}
