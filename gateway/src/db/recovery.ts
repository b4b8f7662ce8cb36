import { existsSync, renameSync } from "node:fs";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { isId } from "@tollgate/shared";
import { DATABASE_FILE, damageReason } from "./database.js";
import { META } from "./meta-repository.js";
import { openStore, type GatewayStore } from "./store.js";

/** What recovery found and did. */
export interface CacheRecovery {
  /** The damaged file's path. */
  path: string;
  /** Where it now is; its -wal and -shm moved alongside with the same suffixes. */
  movedTo: string;
  reason: string;
  /** The gateway id read back from the damaged file, when it was still readable. */
  salvagedGatewayId: string | undefined;
}

export interface RecoveredStore<T> {
  store: GatewayStore;
  /** What `probe` returned on the store in use. */
  probed: T;
  recovery: CacheRecovery | null;
}

/** `2025-06-01T12:00:00.123Z` → `20250601T120000Z`. */
function fileTimestamp(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
}

/** Best effort: the damaged file may still hold a readable gateway id, keeping the gateway's identity. */
function salvageGatewayId(path: string): string | undefined {
  let db: BetterSqlite3.Database | undefined;
  try {
    db = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
    const row = db.prepare(`SELECT value FROM meta WHERE key = ?`).get(META.gatewayId) as
      | { value?: unknown }
      | undefined;
    return isId(row?.value, "gw") ? row.value : undefined;
  } catch {
    return undefined;
  } finally {
    try {
      db?.close();
    } catch {
      // nothing to keep
    }
  }
}

/** Renames the database and its -wal / -shm to `<path>.corrupt-<timestamp>[-wal|-shm]`. */
function moveAside(path: string, nowMs: number): string {
  const base = `${path}.corrupt-${fileTimestamp(nowMs)}`;
  let target = base;
  for (let n = 1; [target, `${target}-wal`, `${target}-shm`].some((p) => existsSync(p)); n++) target = `${base}.${n}`;
  for (const suffix of ["-wal", "-shm", ""]) {
    if (existsSync(path + suffix)) renameSync(path + suffix, target + suffix);
  }
  return target;
}

/**
 * Opens the gateway's SQLite file and runs `probe` on it (the boot-time load).
 * When the file turns out damaged (not a database, corrupt pages, failing
 * quick_check, migrations or load), moves it and its -wal/-shm aside and
 * starts from a fresh, empty file instead of crashing. Errors that are not
 * about the file (permissions, disk full, locks) still throw.
 */
export function openStoreWithRecovery<T>(
  dataDir: string,
  nowMs: number,
  probe: (store: GatewayStore) => T,
): RecoveredStore<T> {
  let store: GatewayStore | undefined;
  try {
    store = openStore(dataDir);
    return { store, probed: probe(store), recovery: null };
  } catch (err) {
    try {
      store?.close();
    } catch {
      // the handle of a damaged file; it is moved aside next
    }
    const reason = damageReason(err);
    if (reason === undefined) throw err;
    const path = join(dataDir, DATABASE_FILE);
    const salvagedGatewayId = salvageGatewayId(path);
    const movedTo = moveAside(path, nowMs);
    const fresh = openStore(dataDir);
    try {
      if (salvagedGatewayId) fresh.meta.set(META.gatewayId, salvagedGatewayId);
      return { store: fresh, probed: probe(fresh), recovery: { path, movedTo, reason, salvagedGatewayId } };
    } catch (freshErr) {
      fresh.close();
      throw freshErr;
    }
  }
}
