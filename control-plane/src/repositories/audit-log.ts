import { newId } from "@tollgate/shared";
import { sql, type RawBuilder } from "kysely";
import type { Db } from "../db/database.js";
import { likeLiteral, toIso } from "./rows.js";

export interface AuditEntryInput {
  orgId: string;
  actor: string;
  action: string;
  targetType: string;
  targetId: string;
  /** State before/after the change, never a secret. */
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
  requestId?: string | null;
}

/**
 * An audit row ready to write, as JSON: serialized when recorded, so it shows the
 * state at that moment, and its id is taken then, so rows keep the order they
 * were recorded in.
 */
export type AuditRow = string & { readonly __auditRow: true };

export function auditRow(entry: AuditEntryInput): AuditRow {
  return JSON.stringify({
    id: newId("aud"),
    org_id: entry.orgId,
    actor: entry.actor,
    action: entry.action,
    target_type: entry.targetType,
    target_id: entry.targetId,
    // Absent, not JSON null: the column is SQL NULL when there is no state to show.
    ...(entry.before ? { before: entry.before } : {}),
    ...(entry.after ? { after: entry.after } : {}),
    ...(typeof entry.requestId === "string" ? { request_id: entry.requestId } : {}),
  }) as AuditRow;
}

/** One INSERT of many audit rows, as a statement of its own or a part of a larger one (a CTE). */
export function insertAuditRows(rows: AuditRow[]): RawBuilder<unknown> {
  return sql`insert into audit_log (id, org_id, actor, action, target_type, target_id, before, after, request_id)
    select e->>'id', e->>'org_id', e->>'actor', e->>'action', e->>'target_type', e->>'target_id',
      e->'before', e->'after', e->>'request_id'
    from jsonb_array_elements(${`[${rows.join(",")}]`}::jsonb) as e`;
}

export async function recordAudit(trx: Db, entry: AuditEntryInput): Promise<void> {
  await recordAudits(trx, [entry]);
}

export async function recordAudits(trx: Db, entries: AuditEntryInput[]): Promise<void> {
  if (entries.length > 0) await insertAuditRows(entries.map(auditRow)).execute(trx);
}

export interface AuditEntry {
  id: string;
  actor: string;
  action: string;
  target_type: string;
  target_id: string;
  before: unknown;
  after: unknown;
  request_id: string | null;
  at: string | null;
}

export async function listAudit(
  db: Db,
  orgId: string,
  filter: {
    targetId?: string | undefined;
    action?: string | undefined;
    /** A part of the actor label, any case (`master_key`, `user:…`, `ip:…`). */
    actor?: string | undefined;
    since?: Date | undefined;
    until?: Date | undefined;
    limit: number;
  },
): Promise<AuditEntry[]> {
  let q = db.selectFrom("audit_log").selectAll().where("org_id", "=", orgId);
  if (filter.targetId) q = q.where("target_id", "=", filter.targetId);
  if (filter.action) q = q.where("action", "=", filter.action);
  if (filter.actor) q = q.where("actor", "ilike", `%${likeLiteral(filter.actor)}%`);
  if (filter.since) q = q.where("at", ">=", filter.since);
  if (filter.until) q = q.where("at", "<", filter.until);
  const rows = await q.orderBy("id", "desc").limit(filter.limit).execute();
  return rows.map((r) => ({
    id: r.id,
    actor: r.actor,
    action: r.action,
    target_type: r.target_type,
    target_id: r.target_id,
    before: r.before,
    after: r.after,
    request_id: r.request_id,
    at: toIso(r.at),
  }));
}
