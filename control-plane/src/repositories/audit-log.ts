import { newId } from "@tollgate/shared";
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

export async function recordAudit(trx: Db, entry: AuditEntryInput): Promise<void> {
  await recordAudits(trx, [entry]);
}

export async function recordAudits(trx: Db, entries: AuditEntryInput[]): Promise<void> {
  for (let i = 0; i < entries.length; i += 1000) {
    await trx
      .insertInto("audit_log")
      .values(
        entries.slice(i, i + 1000).map((entry) => ({
          id: newId("aud"),
          org_id: entry.orgId,
          actor: entry.actor,
          action: entry.action,
          target_type: entry.targetType,
          target_id: entry.targetId,
          before: entry.before ? JSON.stringify(entry.before) : null,
          after: entry.after ? JSON.stringify(entry.after) : null,
          request_id: entry.requestId ?? null,
        })),
      )
      .execute();
  }
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
