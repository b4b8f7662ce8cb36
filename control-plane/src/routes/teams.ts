import { AppError } from "@tollgate/shared";
import { z } from "zod";
import type { Db } from "../db/database.js";
import { defineRoute, routeGroup } from "../http/route.js";
import { getByIdRoute, orNotFound } from "./get-by-id.js";
import { page, pagination } from "../http/pagination.js";
import { audit } from "../http/audit.js";
import {
  countTeamUsers,
  deleteTeam,
  findTeamByName,
  getTeam,
  insertTeam,
  listTeams,
  updateTeam,
} from "../repositories/teams.js";
import { deletedSchema, pageOf, teamSchema } from "./response-schemas.js";
import { displayName, idOf, tokenLimit } from "../http/schemas.js";
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

async function assertTeamNameFree(trx: Db, orgId: string, name: string): Promise<void> {
  if (await findTeamByName(trx, orgId, name)) {
    throw new AppError("conflict", `a team named ${JSON.stringify(name)} already exists`, { field: "name" });
  }
}

export const teamRoutes = routeGroup("teams", [
  defineRoute({
    method: "post",
    path: "/internal/teams",
    response: { status: 201, schema: teamSchema },
    body: createTeam,
    async handler({ ctx, body }, app) {
      const input = await body();
      const orgId = ctx.state.orgId;
      const team = await app.db.transaction().execute(async (trx) => {
        await assertTeamNameFree(trx, orgId, input.name);
        const team = await insertTeam(trx, orgId, input);
        await audit(trx, ctx, { action: "team.create", targetType: "team", targetId: team.id, after: team });
        return team;
      });
      ctx.status = 201;
      ctx.body = team;
    },
  }),
  defineRoute({
    method: "get",
    path: "/internal/teams",
    response: { schema: pageOf(teamSchema) },
    query: pagination,
    async handler({ ctx, query }, app) {
      const q = query();
      const rows = await listTeams(app.db, ctx.state.orgId, { after: q.cursor, limit: q.limit });
      ctx.body = page(rows, q.limit);
    },
  }),
  getByIdRoute({ path: "/internal/teams/:id", id: idOf("team"), noun: "team", find: getTeam, response: teamSchema }),
  defineRoute({
    method: "patch",
    path: "/internal/teams/:id",
    response: { schema: teamSchema },
    params: { id: idOf("team") },
    body: patchTeam,
    async handler({ ctx, params, body }, app) {
      const id = params().id;
      const input = await body();
      const orgId: string = ctx.state.orgId;
      const { result } = await writeWithChanges(app, orgId, async (scope) => {
        const { trx } = scope;
        const before = orNotFound(await getTeam(trx, orgId, id), "team", id);
        if (input.name !== undefined && input.name !== before.name) await assertTeamNameFree(trx, orgId, input.name);
        const after = (await updateTeam(trx, orgId, id, input))!;
        // The team's limits travel with its keys: re-sync them when a limit changes.
        if (after.tpm_limit !== before.tpm_limit || after.daily_token_limit !== before.daily_token_limit) {
          await resyncKeys(scope, orgId, await apiKeyIdsOfTeam(trx, orgId, id));
        }
        await audit(trx, ctx, { action: "team.update", targetType: "team", targetId: id, before, after });
        return after;
      });
      ctx.body = result;
    },
  }),
  // A team with users is not deleted: move or delete its users first, so no key
  // silently changes which team limits it counts against.
  defineRoute({
    method: "delete",
    path: "/internal/teams/:id",
    response: { schema: deletedSchema },
    params: { id: idOf("team") },
    async handler({ ctx, params }, app) {
      const id = params().id;
      const orgId: string = ctx.state.orgId;
      const team = await app.db.transaction().execute(async (trx) => {
        const users = await countTeamUsers(trx, orgId, id);
        if (users > 0) {
          throw new AppError(
            "conflict",
            `team ${id} still has ${users} user(s): move them to another team (PATCH /internal/users/:id) or delete them first`,
          );
        }
        const team = orNotFound(await deleteTeam(trx, orgId, id), "team", id);
        await audit(trx, ctx, { action: "team.delete", targetType: "team", targetId: id, before: team });
        return team;
      });
      ctx.body = { id: team.id, deleted: true };
    },
  }),
]);
