import type { Database } from "better-sqlite3";

/** Keys of the meta table. */
export const META = {
  gatewayId: "gateway_id",
  revision: "revision",
  orgId: "org_id",
  /** Epoch ms of the last contact with the control plane, written now and then (see SyncClient). */
  lastContactAtMs: "last_contact_at_ms",
  /**
   * Set when the cached keys may lack fields the control plane sent (a cache
   * written by an older release): the next subscription asks for a full
   * snapshot, whose apply clears it.
   */
  resyncRequired: "resync_required",
} as const;

/** Sets a meta value; positional (key, value). */
export const META_UPSERT_SQL = `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`;

export interface MetaRepository {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  delete(key: string): void;
}

export function createMetaRepository(db: Database): MetaRepository {
  const select = db.prepare<[string], { value: string }>(`SELECT value FROM meta WHERE key = ?`);
  const upsert = db.prepare<[string, string]>(META_UPSERT_SQL);
  const del = db.prepare<[string]>(`DELETE FROM meta WHERE key = ?`);
  return {
    delete: (key) => {
      del.run(key);
    },
    get: (key) => select.get(key)?.value,
    set: (key, value) => {
      upsert.run(key, value);
    },
  };
}
