import type { Database } from "better-sqlite3";

export type AuditEvent =
  | "key_upsert"
  | "key_delete"
  | "signing_key_upsert"
  | "model_price_upsert"
  | "model_price_delete"
  | "snapshot_applied"
  | "auth_denied"
  | "policy_denied"
  | "cache_recovered"
  | "client_blocked"
  | "auth_disabled"
  | "mcp_server_upsert"
  | "mcp_server_delete"
  | "mcp_denied"
  | "auth_denied_summary";

export interface AuditEntry {
  /** ISO timestamp. */
  at: string;
  event: AuditEvent;
  keyId: string | null;
  revision: number | null;
  /** Serialized as JSON. Must never hold a key, a hash or a token. */
  detail: Record<string, unknown>;
}

export interface AuditRow {
  id: number;
  at: string;
  event: AuditEvent;
  keyId: string | null;
  revision: number | null;
  detail: Record<string, unknown>;
}

export interface AuditRepository {
  insert(entry: AuditEntry): void;
  /** Most recent last; for tests and diagnostics. */
  list(limit?: number): AuditRow[];
}

export const AUDIT_INSERT_SQL = `INSERT INTO audit_log (at, event, key_id, revision, detail) VALUES (?, ?, ?, ?, ?)`;

/** AUDIT_INSERT_SQL's parameters for an entry. */
export function auditParams(e: AuditEntry): unknown[] {
  return [e.at, e.event, e.keyId, e.revision, JSON.stringify(e.detail)];
}

export function createAuditRepository(db: Database): AuditRepository {
  const insert = db.prepare(AUDIT_INSERT_SQL);
  const list = db.prepare<
    [number],
    { id: number; at: string; event: AuditEvent; key_id: string | null; revision: number | null; detail: string }
  >(`SELECT * FROM (SELECT * FROM audit_log ORDER BY id DESC LIMIT ?) ORDER BY id`);
  return {
    insert: (e) => {
      insert.run(auditParams(e));
    },
    list: (limit = 1000) =>
      list.all(limit).map((r) => ({
        id: r.id,
        at: r.at,
        event: r.event,
        keyId: r.key_id,
        revision: r.revision,
        detail: JSON.parse(r.detail) as Record<string, unknown>,
      })),
  };
}
