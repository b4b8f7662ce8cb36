import Router from "@koa/router";
import { AppError } from "@tollgate/shared";
import { z } from "zod";
import type { AppContext } from "../context.js";
import { page, pagination, queryObject, readJsonObject, validate } from "../http/body.js";
import { recordAudit } from "../repositories/audit-log.js";
import { findTeamByName, getTeam, insertTeam, listTeams } from "../repositories/teams.js";
import { displayName, idOf, tokenLimit } from "./schemas.js";

const createTeam = z.strictObject({
  name: displayName,
  tpm_limit: tokenLimit.nullable().optional(),
  daily_token_limit: tokenLimit.nullable().optional(),
});

export function teamRoutes(app: AppContext): Router {
  const router = new Router();

  router.post("/internal/teams", async (ctx) => {
    const input = validate(createTeam, await readJsonObject(ctx, app.config.maxBodyBytes));
    const orgId = app.defaultOrgId;
    const team = await app.db.transaction().execute(async (trx) => {
      if (await findTeamByName(trx, orgId, input.name)) {
        throw new AppError("conflict", `a team named ${JSON.stringify(input.name)} already exists`, { field: "name" });
      }
      const team = await insertTeam(trx, orgId, input);
      await recordAudit(trx, {
        orgId,
        actor: ctx.state.actor,
        action: "team.create",
        targetType: "team",
        targetId: team.id,
        after: team as unknown as Record<string, unknown>,
        requestId: ctx.state.requestId,
      });
      return team;
    });
    ctx.status = 201;
    ctx.body = team;
  });

  router.get("/internal/teams", async (ctx) => {
    const q = validate(pagination, queryObject(ctx));
    const rows = await listTeams(app.db, app.defaultOrgId, { after: q.cursor, limit: q.limit });
    ctx.body = page(rows, q.limit);
  });

  router.get("/internal/teams/:id", async (ctx) => {
    const id = validate(idOf("team"), ctx.params.id);
    const team = await getTeam(app.db, app.defaultOrgId, id);
    if (!team) throw new AppError("not_found", `team ${id} not found`, { field: "id" });
    ctx.body = team;
  });

  return router;
}
