import Router from "@koa/router";
import { AppError } from "@tollgate/shared";
import { z } from "zod";
import type { AppContext } from "../context.js";
import { page, pagination, queryObject, readJsonObject, validate } from "../http/body.js";
import { recordAudit } from "../repositories/audit-log.js";
import { countTeamUsers, deleteTeam, findTeamByName, getTeam, insertTeam, listTeams, updateTeam } from "../repositories/teams.js";
import { displayName, idOf, tokenLimit } from "./schemas.js";
import { apiKeyIdsOfTeam } from "../repositories/api-keys.js";
import { resyncKeys, writeWithChanges } from "../changes/write-with-changes.js";

const createTeam = z.strictObject({
  name: displayName,
  tpm_limit: tokenLimit.nullable().optional(),
  daily_token_limit: tokenLimit.nullable().optional(),
});

const patchTeam = z
  .strictObject({
    name: displayName.optional(),
    tpm_limit: tokenLimit.nullable().optional(),
    daily_token_limit: tokenLimit.nullable().optional(),
  })
  .refine((v) => Object.keys(v).length > 0, "send at least one field to change");

export function teamRoutes(app: AppContext): Router {
  const router = new Router();

  router.post("/internal/teams", async (ctx) => {
    const input = validate(createTeam, await readJsonObject(ctx, app.config.maxBodyBytes));
    const orgId = ctx.state.orgId;
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
    const rows = await listTeams(app.db, ctx.state.orgId, { after: q.cursor, limit: q.limit });
    ctx.body = page(rows, q.limit);
  });

  router.get("/internal/teams/:id", async (ctx) => {
    const id = validate(idOf("team"), ctx.params.id);
    const team = await getTeam(app.db, ctx.state.orgId, id);
    if (!team) throw new AppError("not_found", `team ${id} not found`, { field: "id" });
    ctx.body = team;
  });

  router.patch("/internal/teams/:id", async (ctx) => {
    const id = validate(idOf("team"), ctx.params.id);
    const input = validate(patchTeam, await readJsonObject(ctx, app.config.maxBodyBytes));
    const orgId: string = ctx.state.orgId;
    const { result } = await writeWithChanges(app, orgId, async (scope) => {
      const { trx } = scope;
      const before = await getTeam(trx, orgId, id);
      if (!before) throw new AppError("not_found", `team ${id} not found`, { field: "id" });
      if (input.name !== undefined && input.name !== before.name && (await findTeamByName(trx, orgId, input.name))) {
        throw new AppError("conflict", `a team named ${JSON.stringify(input.name)} already exists`, { field: "name" });
      }
      const after = (await updateTeam(trx, orgId, id, input))!;
      // The team's limits travel with its keys: re-sync them when a limit changes.
      if (after.tpm_limit !== before.tpm_limit || after.daily_token_limit !== before.daily_token_limit) {
        await resyncKeys(scope, orgId, await apiKeyIdsOfTeam(trx, orgId, id));
      }
      await recordAudit(trx, {
        orgId,
        actor: ctx.state.actor,
        action: "team.update",
        targetType: "team",
        targetId: id,
        before: before as unknown as Record<string, unknown>,
        after: after as unknown as Record<string, unknown>,
        requestId: ctx.state.requestId,
      });
      return after;
    });
    ctx.body = result;
  });

  // A team with users is not deleted: move or delete its users first, so no key
  // silently changes which team limits it counts against.
  router.delete("/internal/teams/:id", async (ctx) => {
    const id = validate(idOf("team"), ctx.params.id);
    const orgId: string = ctx.state.orgId;
    const team = await app.db.transaction().execute(async (trx) => {
      const users = await countTeamUsers(trx, orgId, id);
      if (users > 0) {
        throw new AppError("conflict", `team ${id} still has ${users} user(s): move them to another team (PATCH /internal/users/:id) or delete them first`);
      }
      const team = await deleteTeam(trx, orgId, id);
      if (!team) throw new AppError("not_found", `team ${id} not found`, { field: "id" });
      await recordAudit(trx, {
        orgId,
        actor: ctx.state.actor,
        action: "team.delete",
        targetType: "team",
        targetId: id,
        before: team as unknown as Record<string, unknown>,
        requestId: ctx.state.requestId,
      });
      return team;
    });
    ctx.body = { id: team.id, deleted: true };
  });

  return router;
}
