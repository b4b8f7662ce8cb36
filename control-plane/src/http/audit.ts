import type { Context } from "koa";
import type { WriteScope } from "../changes/write-with-changes.js";
import type { Db } from "../db/database.js";
import { recordAudit, recordAudits } from "../repositories/audit-log.js";
import { actorLabel, type AdminActor } from "./admin-auth.js";

/** One admin action on one resource, as the route sees it. */
export interface AuditedAction {
  action: string;
  targetType: string;
  targetId: string;
  before?: unknown;
  after?: unknown;
  /** Defaults to the organization the call acts on. */
  orgId?: string;
}

/** Where audit rows go: a transaction writes them now, a write scope with its change log at the end. */
export type AuditSink = Db | WriteScope;

function isWriteScope(to: AuditSink): to is WriteScope {
  return "emit" in to && "trx" in to;
}

/**
 * Records admin actions with the actor, organization and request id of the
 * Koa context, so no route assembles those itself.
 */
export async function audit(to: AuditSink, ctx: Context, entry: AuditedAction): Promise<void> {
  if (isWriteScope(to)) to.audit(auditEntry(ctx, entry));
  else await recordAudit(to, auditEntry(ctx, entry));
}

/** Audits `<targetType>.<verb>` of the row a route just wrote, recorded as its state after the write. */
export async function auditWrite(
  to: AuditSink,
  ctx: Context,
  targetType: string,
  verb: string,
  row: { id: string },
): Promise<void> {
  await audit(to, ctx, { action: `${targetType}.${verb}`, targetType, targetId: row.id, after: row });
}

export async function auditMany(to: AuditSink, ctx: Context, entries: AuditedAction[]): Promise<void> {
  if (isWriteScope(to)) for (const entry of entries) to.audit(auditEntry(ctx, entry));
  else
    await recordAudits(
      to,
      entries.map((entry) => auditEntry(ctx, entry)),
    );
}

function auditEntry(ctx: Context, e: AuditedAction) {
  return {
    orgId: e.orgId ?? (ctx.state.orgId as string),
    actor: actorLabel(ctx.state.actor as AdminActor),
    action: e.action,
    targetType: e.targetType,
    targetId: e.targetId,
    ...(e.before !== undefined ? { before: e.before as Record<string, unknown> | null } : {}),
    ...(e.after !== undefined ? { after: e.after as Record<string, unknown> | null } : {}),
    requestId: ctx.state.requestId as string,
  };
}
