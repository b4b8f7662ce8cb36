import Router from "@koa/router";
import { AppError, generateApiKey, newId } from "@tollgate/shared";
import { z } from "zod";
import type { AppContext } from "../context.js";
import { page, pagination, queryObject, readJsonObject, validate } from "../http/body.js";
import {
  deleteApiKey,
  getApiKey,
  insertApiKey,
  insertApiKeys,
  keySyncRecord,
  keySyncRecords,
  listApiKeys,
} from "../repositories/api-keys.js";
import { recordAudit, recordAudits } from "../repositories/audit-log.js";
import { existingUserIds, getUser } from "../repositories/users.js";
import { awaitGateways, waitForGatewaysParam } from "../sync/await-gateways.js";
import { writeWithChanges } from "../writes.js";
import { displayName, expiresAt, idOf } from "./schemas.js";

const createKey = z.strictObject({
  name: displayName,
  user_id: idOf("user"),
  expires_at: expiresAt.optional(),
});

const listQuery = pagination.extend({ user_id: idOf("user").optional() });

/** Largest bulk import in one call; it lands as one transaction and a few large pushes. */
export const MAX_BULK_KEYS = 10_000;

const bulkCreate = z.strictObject({
  keys: z.array(createKey).min(1, "must hold at least one key").max(MAX_BULK_KEYS, `must hold at most ${MAX_BULK_KEYS} keys`),
});

export function apiKeyRoutes(app: AppContext): Router {
  const router = new Router();

  router.post("/internal/api-keys", async (ctx) => {
    const waitMs = waitForGatewaysParam(ctx);
    const input = validate(createKey, await readJsonObject(ctx, app.config.maxBodyBytes));
    const orgId = app.defaultOrgId;
    const minted = generateApiKey();
    const { result: key, revision } = await writeWithChanges(app, orgId, async ({ trx, emit }) => {
      if (!(await getUser(trx, orgId, input.user_id))) {
        throw new AppError("not_found", `user ${input.user_id} not found`, { field: "user_id" });
      }
      const key = await insertApiKey(trx, {
        id: newId("ak"),
        orgId,
        userId: input.user_id,
        name: input.name,
        hash: minted.hash,
        prefix: minted.prefix,
        expiresAt: input.expires_at ?? null,
      });
      emit({ kind: "key_upsert", resourceId: key.id, payload: await keySyncRecord(trx, orgId, key.id) });
      await recordAudit(trx, {
        orgId,
        actor: ctx.state.actor,
        action: "api_key.create",
        targetType: "api_key",
        targetId: key.id,
        after: key as unknown as Record<string, unknown>,
        requestId: ctx.state.requestId,
      });
      return key;
    });
    ctx.status = 201;
    ctx.set("x-tollgate-revision", String(revision));
    // The one place the secret is ever shown.
    ctx.body = {
      id: key.id,
      name: key.name,
      key: minted.key,
      key_prefix: key.key_prefix,
      user_id: key.user_id,
      status: key.status,
      expires_at: key.expires_at,
      created_at: key.created_at,
      ...(waitMs !== undefined ? { sync: await awaitGateways(app, orgId, revision!, waitMs) } : {}),
    };
  });

  router.post("/internal/api-keys/bulk", async (ctx) => {
    const waitMs = waitForGatewaysParam(ctx);
    const input = validate(bulkCreate, await readJsonObject(ctx, app.config.maxBulkBodyBytes));
    const orgId = app.defaultOrgId;
    const minted = input.keys.map(() => generateApiKey());
    const { result: keys, revision } = await writeWithChanges(app, orgId, async ({ trx, emit }) => {
      const wanted = [...new Set(input.keys.map((k) => k.user_id))];
      const found = await existingUserIds(trx, orgId, wanted);
      const index = input.keys.findIndex((k) => !found.has(k.user_id));
      if (index >= 0) {
        throw new AppError("not_found", `keys.${index}.user_id: user ${input.keys[index]!.user_id} not found`, {
          field: `keys.${index}.user_id`,
        });
      }
      const keys = await insertApiKeys(
        trx,
        input.keys.map((k, i) => ({
          id: newId("ak"),
          orgId,
          userId: k.user_id,
          name: k.name,
          hash: minted[i]!.hash,
          prefix: minted[i]!.prefix,
          expiresAt: k.expires_at ?? null,
        })),
      );
      for (const record of await keySyncRecords(trx, orgId, keys.map((k) => k.id))) {
        emit({ kind: "key_upsert", resourceId: record.id, payload: record });
      }
      await recordAudits(
        trx,
        keys.map((key) => ({
          orgId,
          actor: ctx.state.actor,
          action: "api_key.create",
          targetType: "api_key",
          targetId: key.id,
          after: key as unknown as Record<string, unknown>,
          requestId: ctx.state.requestId,
        })),
      );
      return keys;
    });
    ctx.status = 201;
    ctx.set("x-tollgate-revision", String(revision));
    ctx.body = {
      data: keys.map((key, i) => ({
        id: key.id,
        name: key.name,
        key: minted[i]!.key,
        key_prefix: key.key_prefix,
        user_id: key.user_id,
        status: key.status,
        expires_at: key.expires_at,
        created_at: key.created_at,
      })),
      revision,
      ...(waitMs !== undefined ? { sync: await awaitGateways(app, orgId, revision!, waitMs) } : {}),
    };
  });

  router.get("/internal/api-keys", async (ctx) => {
    const q = validate(listQuery, queryObject(ctx));
    const rows = await listApiKeys(app.db, app.defaultOrgId, { after: q.cursor, limit: q.limit, userId: q.user_id });
    ctx.body = page(rows, q.limit);
  });

  router.get("/internal/api-keys/:id", async (ctx) => {
    const id = validate(idOf("ak"), ctx.params.id);
    const key = await getApiKey(app.db, app.defaultOrgId, id);
    if (!key) throw new AppError("not_found", `api key ${id} not found`, { field: "id" });
    ctx.body = key;
  });

  router.delete("/internal/api-keys/:id", async (ctx) => {
    const waitMs = waitForGatewaysParam(ctx);
    const id = validate(idOf("ak"), ctx.params.id);
    const orgId = app.defaultOrgId;
    const { result: key, revision } = await writeWithChanges(app, orgId, async ({ trx, emit }) => {
      const key = await deleteApiKey(trx, orgId, id);
      if (!key) throw new AppError("not_found", `api key ${id} not found`, { field: "id" });
      emit({ kind: "key_delete", resourceId: key.id, payload: { id: key.id } });
      await recordAudit(trx, {
        orgId,
        actor: ctx.state.actor,
        action: "api_key.delete",
        targetType: "api_key",
        targetId: key.id,
        before: key as unknown as Record<string, unknown>,
        requestId: ctx.state.requestId,
      });
      return key;
    });
    ctx.set("x-tollgate-revision", String(revision));
    ctx.body = {
      id: key.id,
      deleted: true,
      ...(waitMs !== undefined ? { sync: await awaitGateways(app, orgId, revision!, waitMs) } : {}),
    };
  });

  return router;
}
