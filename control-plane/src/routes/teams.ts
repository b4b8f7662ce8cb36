import { AppError } from "@tollgate/shared";
import { z } from "zod";
import type { Db } from "../db/database.js";
import { defineRoute, routeGroup } from "../http/route.js";
import { orNotFound } from "./get-by-id.js";
import { pagination } from "../http/pagination.js";
import { resourceRoutes } from "./crud-routes.js";
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
import { deletedSchema, teamSchema } from "./response-schemas.js";
import { displayName, idOf, tokenLimit } from "../http/schemas.js";
import { apiKeyIdsOfTeam } from "../repositories/api-keys.js";

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
  ...resourceRoutes(
    { path: "/internal/teams", noun: "team", id: idOf("team"), response: teamSchema, find: getTeam },
    {
      create: {
        body: createTeam,
        async insert(trx, orgId, input) {
          await assertTeamNameFree(trx, orgId, input.name);
          return insertTeam(trx, orgId, input);
        },
      },
      list: {
        query: pagination,
        list: (db, orgId, q) => listTeams(db, orgId, { after: q.cursor, limit: q.limit }),
      },
      update: {
        body: patchTeam,
        async update(trx, orgId, id, input, before) {
          if (input.name !== undefined && input.name !== before.name) await assertTeamNameFree(trx, orgId, input.name);
          return (await updateTeam(trx, orgId, id, input))!;
        },
        // The team's limits travel with its keys: re-sync them when a limit changes.
        syncedFields: ["tpm_limit", "daily_token_limit"],
        keysOf: apiKeyIdsOfTeam,
      },
    },
  ),
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
