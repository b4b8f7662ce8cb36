import { createHmac } from "node:crypto";
import Router from "@koa/router";
import { AppError, apiKeyFromSeed, generateApiKey, newId, signEphemeralToken } from "@tollgate/shared";
import type { Context } from "koa";
import { z } from "zod";
import type { AppContext } from "../context.js";
import { queryObject, readJsonObject, validate } from "../http/body.js";
import {
  deleteApiKey,
  getApiKey,
  insertApiKey,
  insertApiKeys,
  keySyncRecord,
  keySyncRecords,
  listApiKeys,
  orgRequestTotal,
  lockApiKey,
  rotateApiKeySecret,
  updateApiKey,
  type ApiKey,
  type ApiKeyPatch,
} from "../repositories/api-keys.js";
import { recordAudit, recordAudits } from "../repositories/audit-log.js";
import { findIdempotencyRecord, saveIdempotencyRecord } from "../repositories/idempotency.js";
import { currentSigningKey } from "../repositories/signing-keys.js";
import { existingUserIds, getUser } from "../repositories/users.js";
import { awaitGateways } from "../changes/await-gateways.js";
import { waitForGatewaysParam } from "../http/wait-for-gateways.js";
import { writeWithChanges, type WriteScope } from "../changes/write-with-changes.js";
import { createKeySchema, patchKeySchema, settingsFrom } from "./key-schemas.js";
import { idOf } from "./schemas.js";

/** Largest bulk import in one call; it lands as one transaction and a few large pushes. */
export const MAX_BULK_KEYS = 10_000;
export const MAX_GRACE_SECONDS = 7 * 86_400;
export const MAX_EPHEMERAL_TTL_SECONDS = 86_400;

const bulkCreate = z.strictObject({
  keys: z.array(createKeySchema).min(1, "must hold at least one key").max(MAX_BULK_KEYS, `must hold at most ${MAX_BULK_KEYS} keys`),
});

const listQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(500).optional(),
  user_id: idOf("user").optional(),
  search: z.string().trim().min(1).max(200).optional(),
  status: z.enum(["active", "inactive", "expired", "revoked"]).optional(),
  sort: z.enum(["name", "owner", "status", "created", "requests"]).default("created"),
  order: z.enum(["asc", "desc"]).default("asc"),
});

const rotateBody = z.strictObject({
  grace_seconds: z.number().int("must be a whole number of seconds").min(0).max(MAX_GRACE_SECONDS, `must be at most ${MAX_GRACE_SECONDS} (7 days)`).optional(),
});

const ephemeralBody = z.strictObject({
  ttl_seconds: z
    .number({ error: "must be a number of seconds" })
    .int("must be a whole number of seconds")
    .min(60, "must be at least 60")
    .max(MAX_EPHEMERAL_TTL_SECONDS, `must be at most ${MAX_EPHEMERAL_TTL_SECONDS} (24 hours)`)
    .default(3600),
});

function encodeCursor(c: { v: string | number; id: string }): string {
  return Buffer.from(JSON.stringify(c)).toString("base64url");
}

function decodeCursor(raw: string): { v: string | number; id: string } {
  try {
    const c = JSON.parse(Buffer.from(raw, "base64url").toString("utf8")) as { v: unknown; id: unknown };
    if ((typeof c.v === "string" || typeof c.v === "number") && typeof c.id === "string") return { v: c.v, id: c.id };
  } catch {
    // fall through
  }
  throw new AppError("invalid_request", "cursor is not one this API returned: pass next_cursor unchanged", { field: "cursor" });
}

/** What a create or rotate shows once: the key with its secret. */
function revealed(key: ApiKey, secret: string) {
  return { ...key, key: secret };
}

async function body(ctx: Context, app: AppContext): Promise<Record<string, unknown>> {
  // Action endpoints accept an empty body.
  return ctx.get("content-length") === "0" || (!ctx.get("content-length") && !ctx.get("transfer-encoding"))
    ? {}
    : readJsonObject(ctx, app.config.maxBodyBytes);
}

export function apiKeyRoutes(app: AppContext): Router {
  const router = new Router();

  async function audit(scope: WriteScope, ctx: Context, action: string, targetId: string, before: unknown, after: unknown) {
    await recordAudit(scope.trx, {
      orgId: ctx.state.orgId,
      actor: ctx.state.actor,
      action,
      targetType: "api_key",
      targetId,
      before: (before as Record<string, unknown>) ?? null,
      after: (after as Record<string, unknown>) ?? null,
      requestId: ctx.state.requestId,
    });
  }

  /** Locks a key, applies `change`, syncs and audits it; 404 when it does not exist. */
  async function changeKey(
    ctx: Context,
    action: string,
    change: (scope: WriteScope, current: ApiKey & { key_hash: Buffer }) => Promise<ApiKey>,
  ): Promise<{ key: ApiKey; revision: number | null }> {
    const id = validate(idOf("ak"), ctx.params.id);
    const orgId: string = ctx.state.orgId;
    const { result, revision } = await writeWithChanges(app, orgId, async (scope) => {
      const current = await lockApiKey(scope.trx, orgId, id);
      if (!current) throw new AppError("not_found", `api key ${id} not found`, { field: "id" });
      const updated = await change(scope, current);
      scope.emit({ kind: "key_upsert", resourceId: id, payload: await keySyncRecord(scope.trx, orgId, id) });
      const { key_hash: _secretHash, ...before } = current;
      await audit(scope, ctx, action, id, before, updated);
      return updated;
    });
    return { key: result, revision };
  }

  async function respond(ctx: Context, orgId: string, revision: number | null, waitMs: number | undefined, payload: Record<string, unknown>) {
    if (revision !== null) ctx.set("x-tollgate-revision", String(revision));
    ctx.body = {
      ...payload,
      ...(waitMs !== undefined && revision !== null ? { sync: await awaitGateways(app, orgId, revision, waitMs) } : {}),
    };
  }

  router.post("/internal/api-keys", async (ctx) => {
    const waitMs = waitForGatewaysParam(ctx);
    const input = validate(createKeySchema, await readJsonObject(ctx, app.config.maxBodyBytes));
    const orgId: string = ctx.state.orgId;
    const minted = generateApiKey();
    const { result: key, revision } = await writeWithChanges(app, orgId, async (scope) => {
      if (!(await getUser(scope.trx, orgId, input.user_id))) {
        throw new AppError("not_found", `user ${input.user_id} not found`, { field: "user_id" });
      }
      const key = await insertApiKey(scope.trx, {
        id: newId("ak"),
        orgId,
        userId: input.user_id,
        name: input.name,
        hash: minted.hash,
        prefix: minted.prefix,
        settings: settingsFrom(input),
      });
      scope.emit({ kind: "key_upsert", resourceId: key.id, payload: await keySyncRecord(scope.trx, orgId, key.id) });
      await audit(scope, ctx, "api_key.create", key.id, null, key);
      return key;
    });
    ctx.status = 201;
    // The one place the secret is ever shown.
    await respond(ctx, orgId, revision, waitMs, revealed((await getApiKey(app.db, orgId, key.id)) ?? key, minted.key));
  });

  router.post("/internal/api-keys/bulk", async (ctx) => {
    const waitMs = waitForGatewaysParam(ctx);
    const input = validate(bulkCreate, await readJsonObject(ctx, app.config.maxBulkBodyBytes));
    const orgId: string = ctx.state.orgId;
    const minted = input.keys.map(() => generateApiKey());
    const { result: keys, revision } = await writeWithChanges(app, orgId, async ({ trx, emit }) => {
      const found = await existingUserIds(trx, orgId, [...new Set(input.keys.map((k) => k.user_id))]);
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
          settings: settingsFrom(k),
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
    await respond(ctx, orgId, revision, waitMs, { data: keys.map((key, i) => revealed(key, minted[i]!.key)), revision });
  });

  router.get("/internal/api-keys", async (ctx) => {
    const q = validate(listQuery, queryObject(ctx));
    const { rows, next } = await listApiKeys(app.db, ctx.state.orgId, {
      limit: q.limit,
      cursor: q.cursor ? decodeCursor(q.cursor) : undefined,
      userId: q.user_id,
      search: q.search,
      status: q.status,
      sort: q.sort,
      order: q.order,
    });
    // Usage: the key's share of all requests the organization's keys have served.
    const total = await orgRequestTotal(app.db, ctx.state.orgId);
    const data = rows.map((k) => ({ ...k, usage_pct: total > 0 ? Math.round((k.requests / total) * 10_000) / 100 : 0 }));
    ctx.body = { data, next_cursor: next ? encodeCursor(next) : null };
  });

  router.get("/internal/api-keys/:id", async (ctx) => {
    const id = validate(idOf("ak"), ctx.params.id);
    const key = await getApiKey(app.db, ctx.state.orgId, id);
    if (!key) throw new AppError("not_found", `api key ${id} not found`, { field: "id" });
    ctx.body = key;
  });

  router.patch("/internal/api-keys/:id", async (ctx) => {
    const waitMs = waitForGatewaysParam(ctx);
    const input = validate(patchKeySchema, await readJsonObject(ctx, app.config.maxBodyBytes));
    const { key, revision } = await changeKey(ctx, "api_key.update", async ({ trx }, current) => {
      const budget = input.budget_usd !== undefined ? input.budget_usd : current.budget_usd;
      const thresholds = input.budget_alert_thresholds ?? current.budget_alert_thresholds;
      if (thresholds.length > 0 && budget === null) {
        throw new AppError("invalid_request", "budget_alert_thresholds: needs budget_usd: thresholds are percentages of the budget", {
          field: input.budget_usd === null ? "budget_usd" : "budget_alert_thresholds",
        });
      }
      return updateApiKey(trx, ctx.state.orgId, current.id, input as ApiKeyPatch, current);
    });
    await respond(ctx, ctx.state.orgId, revision, waitMs, { ...key });
  });

  for (const [action, status, allowedFrom] of [
    ["deactivate", "inactive", ["active", "expired"]],
    ["activate", "active", ["inactive", "revoked"]],
    ["revoke", "revoked", ["active", "inactive", "expired"]],
  ] as const) {
    router.post(`/internal/api-keys/:id/${action}`, async (ctx) => {
      const waitMs = waitForGatewaysParam(ctx);
      validate(z.strictObject({}), await body(ctx, app));
      const { key, revision } = await changeKey(ctx, `api_key.${action}`, async ({ trx }, current) => {
        if (!(allowedFrom as readonly string[]).includes(current.status)) {
          throw new AppError("conflict", `api key ${current.id} is ${current.status}; ${action} applies to a key that is ${allowedFrom.join(" or ")}`);
        }
        return updateApiKey(trx, ctx.state.orgId, current.id, { status }, current);
      });
      await respond(ctx, ctx.state.orgId, revision, waitMs, { ...key });
    });
  }

  router.post("/internal/api-keys/:id/rotate", async (ctx) => {
    const waitMs = waitForGatewaysParam(ctx);
    const input = validate(rotateBody, await body(ctx, app));
    const id = validate(idOf("ak"), ctx.params.id);
    const orgId: string = ctx.state.orgId;
    const idempotencyKey = ctx.get("idempotency-key") || undefined;
    if (idempotencyKey !== undefined && (idempotencyKey.length < 8 || idempotencyKey.length > 200)) {
      throw new AppError("invalid_request", "Idempotency-Key must be 8 to 200 characters (a UUID is ideal)", { field: "Idempotency-Key" });
    }
    // With an Idempotency-Key the new secret is derived from it, so a retry can
    // return the same secret without it ever being stored.
    const minted = idempotencyKey
      ? apiKeyFromSeed(createHmac("sha256", app.config.masterKey).update(`rotate:${orgId}:${id}:${idempotencyKey}`).digest())
      : generateApiKey();
    if (idempotencyKey) {
      const previous = await findIdempotencyRecord(app.db, orgId, "api_key.rotate", idempotencyKey);
      if (previous) {
        if (previous.targetId !== id) {
          throw new AppError("conflict", "this Idempotency-Key was already used to rotate another key", { field: "Idempotency-Key" });
        }
        ctx.set("idempotent-replayed", "true");
        ctx.body = { ...previous.response, key: minted.key };
        return;
      }
    }
    const grace = input.grace_seconds ?? 0;
    const { key, revision } = await changeKey(ctx, "api_key.rotate", async ({ trx }, current) => {
      if (current.status !== "active") {
        throw new AppError("conflict", `api key ${id} is ${current.status}: activate it before rotating`);
      }
      const rotated = await rotateApiKeySecret(trx, orgId, id, {
        hash: minted.hash,
        prefix: minted.prefix,
        previousHash: grace > 0 ? current.key_hash : null,
        previousExpiresAt: grace > 0 ? new Date(Date.now() + grace * 1000) : null,
      });
      if (idempotencyKey) {
        await saveIdempotencyRecord(trx, orgId, "api_key.rotate", idempotencyKey, { targetId: id, response: { ...rotated } });
      }
      return rotated;
    });
    await respond(ctx, orgId, revision, waitMs, revealed(key, minted.key));
  });

  router.post("/internal/api-keys/:id/ephemeral-tokens", async (ctx) => {
    const input = validate(ephemeralBody, await body(ctx, app));
    const id = validate(idOf("ak"), ctx.params.id);
    const orgId: string = ctx.state.orgId;
    const { result, revision } = await writeWithChanges(app, orgId, async (scope) => {
      const key = await getApiKey(scope.trx, orgId, id);
      if (!key) throw new AppError("not_found", `api key ${id} not found`, { field: "id" });
      if (key.status !== "active") throw new AppError("conflict", `api key ${id} is ${key.status}: only an active key can issue tokens`);
      const signing = await currentSigningKey(scope.trx, orgId, app.config.masterKey);
      if (signing.created) scope.emit({ kind: "signing_key_upsert", resourceId: signing.id, payload: signing.record });
      const now = Math.floor(Date.now() / 1000);
      // Never outlive the parent key.
      const parentExpiry = key.expires_at ? Math.floor(Date.parse(key.expires_at) / 1000) : Number.POSITIVE_INFINITY;
      const exp = Math.min(now + input.ttl_seconds, parentExpiry);
      const { token, claims } = signEphemeralToken({ kid: signing.id, key_id: id, org_id: orgId, iat: now, exp }, signing.privateKey);
      await recordAudit(scope.trx, {
        orgId,
        actor: ctx.state.actor,
        action: "api_key.ephemeral_token",
        targetType: "api_key",
        targetId: id,
        after: { token_id: claims.jti, expires_at: new Date(exp * 1000).toISOString(), ttl_seconds: exp - now },
        requestId: ctx.state.requestId,
      });
      return { token, claims };
    });
    ctx.status = 201;
    if (revision !== null) ctx.set("x-tollgate-revision", String(revision));
    ctx.body = {
      token: result.token,
      token_id: result.claims.jti,
      key_id: id,
      expires_at: new Date(result.claims.exp * 1000).toISOString(),
    };
  });

  router.delete("/internal/api-keys/:id", async (ctx) => {
    const waitMs = waitForGatewaysParam(ctx);
    const id = validate(idOf("ak"), ctx.params.id);
    const orgId: string = ctx.state.orgId;
    const { result: key, revision } = await writeWithChanges(app, orgId, async (scope) => {
      const key = await deleteApiKey(scope.trx, orgId, id);
      if (!key) throw new AppError("not_found", `api key ${id} not found`, { field: "id" });
      scope.emit({ kind: "key_delete", resourceId: key.id, payload: { id: key.id } });
      await audit(scope, ctx, "api_key.delete", key.id, key, null);
      return key;
    });
    await respond(ctx, orgId, revision, waitMs, { id: key.id, deleted: true });
  });

  return router;
}
