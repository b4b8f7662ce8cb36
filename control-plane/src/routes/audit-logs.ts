import Router from "@koa/router";
import { z } from "zod";
import type { AppContext } from "../context.js";
import { queryObject, validate } from "../http/body.js";
import { listAudit } from "../repositories/audit-log.js";

const query = z.strictObject({
  target_id: z.string().max(100).optional(),
  action: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export function auditLogRoutes(app: AppContext): Router {
  const router = new Router();
  router.get("/internal/audit-logs", async (ctx) => {
    const q = validate(query, queryObject(ctx));
    const rows = await listAudit(app.db, app.defaultOrgId, { targetId: q.target_id, action: q.action, limit: q.limit });
    ctx.body = { data: rows, next_cursor: null };
  });
  return router;
}
