import { isRealCalendarDate } from "../http/input-guard.js";
import { z } from "zod";
import { wholeList } from "../http/pagination.js";
import { defineRoute, routeGroup } from "../http/route.js";
import { auditEntrySchema, pageOf } from "./response-schemas.js";
import { listAudit } from "../repositories/audit-log.js";

const query = z.strictObject({
  target_id: z.string().max(100).optional(),
  action: z.string().max(100).optional(),
  actor: z.string().max(200).optional(),
  since: z.iso
    .datetime({ offset: true, error: "must be an ISO-8601 timestamp" })
    .refine(isRealCalendarDate, "must be a time that exists")
    .optional(),
  until: z.iso
    .datetime({ offset: true, error: "must be an ISO-8601 timestamp" })
    .refine(isRealCalendarDate, "must be a time that exists")
    .optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const auditLogRoutes = routeGroup("audit-logs", [
  defineRoute({
    method: "get",
    path: "/internal/audit-logs",
    response: { schema: pageOf(auditEntrySchema) },
    query: query,
    async handler({ ctx, query }, app) {
      const q = query();
      const rows = await listAudit(app.db, ctx.state.orgId, {
        targetId: q.target_id,
        action: q.action,
        actor: q.actor,
        since: q.since ? new Date(q.since) : undefined,
        until: q.until ? new Date(q.until) : undefined,
        limit: q.limit,
      });
      ctx.body = wholeList(rows);
    },
  }),
]);
