import { AppError } from "@tollgate/shared";
import { z } from "zod";
import type { Db } from "../db/database.js";
import { defineRoute, routeGroup } from "../http/route.js";
import { orNotFound } from "./get-by-id.js";
import { pagination } from "../http/pagination.js";
import { resourceRoutes } from "./crud-routes.js";
import { audit } from "../http/audit.js";
import { getTeam } from "../repositories/teams.js";
import { apiKeyIdsOfUser } from "../repositories/api-keys.js";
import { deleteUser, findUserByExternalId, getUser, insertUser, listUsers, updateUser } from "../repositories/users.js";
import { writeWithChanges } from "../changes/write-with-changes.js";
import { deletedSchema, userSchema } from "./response-schemas.js";
import { idOf, tokenLimit } from "../http/schemas.js";

const limits = {
  rpm_limit: tokenLimit.nullable().optional(),
  tpm_limit: tokenLimit.nullable().optional(),
  daily_token_limit: tokenLimit.nullable().optional(),
};

/** `admin`: everything in the organization; `member`: their own keys only. */
const role = z.enum(["admin", "member"], { error: "must be admin or member" });

const createUser = z.strictObject({
  external_id: z.string().trim().min(1, "must not be empty").max(320, "must be at most 320 characters"),
  team_id: idOf("team").nullable().optional(),
  role: role.optional(),
  ...limits,
});

const listQuery = pagination.extend({ team_id: idOf("team").optional() });

const patchUser = z
  .strictObject({
    external_id: z.string().trim().min(1, "must not be empty").max(320, "must be at most 320 characters").optional(),
    team_id: idOf("team").nullable().optional(),
    role: role.optional(),
    ...limits,
  })
  .refine((v) => Object.keys(v).length > 0, "send at least one field to change");

const deleteQuery = z.strictObject({ cascade: z.enum(["true", "false"]).optional() });

async function assertTeamExists(trx: Db, orgId: string, teamId: string): Promise<void> {
  if (!(await getTeam(trx, orgId, teamId))) {
    throw new AppError("not_found", `team ${teamId} not found`, { field: "team_id" });
  }
}

async function assertExternalIdFree(trx: Db, orgId: string, externalId: string): Promise<void> {
  if (await findUserByExternalId(trx, orgId, externalId)) {
    throw new AppError("conflict", `a user with external_id ${JSON.stringify(externalId)} already exists`, {
      field: "external_id",
    });
  }
}

export const userRoutes = routeGroup("users", [
  ...resourceRoutes(
    { path: "/internal/users", noun: "user", id: idOf("user"), response: userSchema, find: getUser },
    {
      create: {
        body: createUser,
        async insert(trx, orgId, input) {
          if (input.team_id) await assertTeamExists(trx, orgId, input.team_id);
          await assertExternalIdFree(trx, orgId, input.external_id);
          return insertUser(trx, orgId, input);
        },
      },
      list: {
        query: listQuery,
        list: (db, orgId, q) => listUsers(db, orgId, { after: q.cursor, limit: q.limit, teamId: q.team_id }),
      },
      // Moving a user to another team re-syncs its keys, so gateways count them against the new team.
      update: {
        body: patchUser,
        async update(trx, orgId, id, input, before) {
          if (input.team_id) await assertTeamExists(trx, orgId, input.team_id);
          if (input.external_id !== undefined && input.external_id !== before.external_id) {
            await assertExternalIdFree(trx, orgId, input.external_id);
          }
          return (await updateUser(trx, orgId, id, input))!;
        },
        // Its keys carry the user's and team's limits to the gateways.
        syncedFields: ["team_id", "rpm_limit", "tpm_limit", "daily_token_limit"],
        keysOf: apiKeyIdsOfUser,
      },
    },
  ),
  // A user with keys is not deleted unless ?cascade=true, which deletes its keys too
  // (and stops them on every gateway).
  defineRoute({
    method: "delete",
    path: "/internal/users/:id",
    response: { schema: deletedSchema.extend({ deleted_keys: z.array(z.string()) }) },
    params: { id: idOf("user") },
    query: deleteQuery,
    async handler({ ctx, params, query }, app) {
      const id = params().id;
      const q = query();
      const orgId: string = ctx.state.orgId;
      const { result } = await writeWithChanges(app, orgId, async (scope) => {
        const { trx, emit } = scope;
        const user = orNotFound(await getUser(trx, orgId, id), "user", id);
        const keyIds = await apiKeyIdsOfUser(trx, orgId, id);
        if (keyIds.length > 0 && q.cascade !== "true") {
          throw new AppError(
            "conflict",
            `user ${id} owns ${keyIds.length} API key(s): delete them first, or pass ?cascade=true to delete them with the user`,
          );
        }
        if (keyIds.length > 0) {
          await trx.deleteFrom("api_keys").where("org_id", "=", orgId).where("user_id", "=", id).execute();
          for (const keyId of keyIds) emit({ kind: "key_delete", resourceId: keyId, payload: { id: keyId } });
        }
        await deleteUser(trx, orgId, id);
        await audit(scope, ctx, {
          action: "user.delete",
          targetType: "user",
          targetId: id,
          before: { ...user, deleted_keys: keyIds },
        });
        return { id, deleted: true, deleted_keys: keyIds };
      });
      ctx.body = result;
    },
  }),
]);
