import Router from "@koa/router";
import { AppError } from "@tollgate/shared";
import { z } from "zod";
import type { AppContext } from "../context.js";
import { page, pagination, queryObject, readJsonObject, validate } from "../http/body.js";
import { recordAudit } from "../repositories/audit-log.js";
import { getTeam } from "../repositories/teams.js";
import { findUserByExternalId, getUser, insertUser, listUsers } from "../repositories/users.js";
import { idOf } from "./schemas.js";

const createUser = z.strictObject({
  external_id: z.string().trim().min(1, "must not be empty").max(320, "must be at most 320 characters"),
  team_id: idOf("team").nullable().optional(),
});

const listQuery = pagination.extend({ team_id: idOf("team").optional() });

export function userRoutes(app: AppContext): Router {
  const router = new Router();

  router.post("/internal/users", async (ctx) => {
    const input = validate(createUser, await readJsonObject(ctx, app.config.maxBodyBytes));
    const orgId = app.defaultOrgId;
    const user = await app.db.transaction().execute(async (trx) => {
      if (input.team_id && !(await getTeam(trx, orgId, input.team_id))) {
        throw new AppError("not_found", `team ${input.team_id} not found`, { field: "team_id" });
      }
      if (await findUserByExternalId(trx, orgId, input.external_id)) {
        throw new AppError("conflict", `a user with external_id ${JSON.stringify(input.external_id)} already exists`, {
          field: "external_id",
        });
      }
      const user = await insertUser(trx, orgId, input);
      await recordAudit(trx, {
        orgId,
        actor: ctx.state.actor,
        action: "user.create",
        targetType: "user",
        targetId: user.id,
        after: user as unknown as Record<string, unknown>,
        requestId: ctx.state.requestId,
      });
      return user;
    });
    ctx.status = 201;
    ctx.body = user;
  });

  router.get("/internal/users", async (ctx) => {
    const q = validate(listQuery, queryObject(ctx));
    const rows = await listUsers(app.db, app.defaultOrgId, { after: q.cursor, limit: q.limit, teamId: q.team_id });
    ctx.body = page(rows, q.limit);
  });

  router.get("/internal/users/:id", async (ctx) => {
    const id = validate(idOf("user"), ctx.params.id);
    const user = await getUser(app.db, app.defaultOrgId, id);
    if (!user) throw new AppError("not_found", `user ${id} not found`, { field: "id" });
    ctx.body = user;
  });

  return router;
}
