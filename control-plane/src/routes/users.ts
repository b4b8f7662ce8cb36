import { AppError } from "@tollgate/shared";
import { z } from "zod";
import type { Db } from "../db/database.js";
import { defineRoute, routeGroup } from "../http/route.js";
import { getByIdRoute, orNotFound } from "./get-by-id.js";
import { page, pagination } from "../http/pagination.js";
import { audit } from "../http/audit.js";
import { getTeam } from "../repositories/teams.js";
import { apiKeyIdsOfUser } from "../repositories/api-keys.js";
import { deleteUser, findUserByExternalId, getUser, insertUser, listUsers, updateUser } from "../repositories/users.js";
import { resyncKeys, writeWithChanges } from "../changes/write-with-changes.js";
import { deletedSchema, pageOf, userSchema } from "./response-schemas.js";
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
  defineRoute({
    method: "post",
    path: "/internal/users",
    response: { status: 201, schema: userSchema },
    body: createUser,
    async handler({ ctx, body }, app) {
      const input = await body();
      const orgId = ctx.state.orgId;
      const user = await app.db.transaction().execute(async (trx) => {
        if (input.team_id) await assertTeamExists(trx, orgId, input.team_id);
        await assertExternalIdFree(trx, orgId, input.external_id);
        const user = await insertUser(trx, orgId, input);
        await audit(trx, ctx, { action: "user.create", targetType: "user", targetId: user.id, after: user });
        return user;
      });
      ctx.status = 201;
      ctx.body = user;
    },
  }),
  defineRoute({
    method: "get",
    path: "/internal/users",
    response: { schema: pageOf(userSchema) },
    query: listQuery,
    async handler({ ctx, query }, app) {
      const q = query();
      const rows = await listUsers(app.db, ctx.state.orgId, { after: q.cursor, limit: q.limit, teamId: q.team_id });
      ctx.body = page(rows, q.limit);
    },
  }),
  getByIdRoute({ path: "/internal/users/:id", id: idOf("user"), noun: "user", find: getUser, response: userSchema }),
  // Moving a user to another team re-syncs its keys, so gateways count them against the new team.
  defineRoute({
    method: "patch",
    path: "/internal/users/:id",
    response: { schema: userSchema },
    params: { id: idOf("user") },
    body: patchUser,
    async handler({ ctx, params, body }, app) {
      const id = params().id;
      const input = await body();
      const orgId: string = ctx.state.orgId;
      const { result } = await writeWithChanges(app, orgId, async (scope) => {
        const { trx } = scope;
        const before = orNotFound(await getUser(trx, orgId, id), "user", id);
        if (input.team_id) await assertTeamExists(trx, orgId, input.team_id);
        if (input.external_id !== undefined && input.external_id !== before.external_id) {
          await assertExternalIdFree(trx, orgId, input.external_id);
        }
        const after = (await updateUser(trx, orgId, id, input))!;
        // Its keys carry the user's and team's limits to the gateways.
        if (
          after.team_id !== before.team_id ||
          after.rpm_limit !== before.rpm_limit ||
          after.tpm_limit !== before.tpm_limit ||
          after.daily_token_limit !== before.daily_token_limit
        ) {
          await resyncKeys(scope, orgId, await apiKeyIdsOfUser(trx, orgId, id));
        }
        await audit(trx, ctx, { action: "user.update", targetType: "user", targetId: id, before, after });
        return after;
      });
      ctx.body = result;
    },
  }),
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
      const { result } = await writeWithChanges(app, orgId, async ({ trx, emit }) => {
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
        await audit(trx, ctx, {
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
