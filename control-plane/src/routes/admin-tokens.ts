import Router from "@koa/router";
import { AppError } from "@tollgate/shared";
import { z } from "zod";
import { mintAdminToken } from "../auth/admin-tokens.js";
import { ADMIN_TOKEN_ROLES } from "../auth/roles.js";
import { deleteSessionsOfActor } from "../auth/sessions.js";
import type { AppContext } from "../context.js";
import { requestActorLabel } from "../http/actor.js";
import { readJsonObject, validate } from "../http/body.js";
import { getAdminToken, insertAdminToken, listAdminTokens, revokeAdminToken } from "../repositories/admin-tokens.js";
import { recordAudit } from "../repositories/audit-log.js";
import { displayName, expiresAt } from "./schemas.js";

const createToken = z.strictObject({
  name: displayName,
  role: z.enum(ADMIN_TOKEN_ROLES as [string, ...string[]], { error: "must be admin or read_only" }).default("read_only"),
  expires_at: expiresAt.optional(),
});

const tokenId = z.string({ error: "must be an adt_… id" }).regex(/^adt_[0-9a-z]{26}$/, "must be an adt_… id");

/**
 * Organization-scoped admin tokens for automation: minted by the master key or an
 * organization admin, shown once, stored as SHA-256, listed by prefix, revocable
 * and optionally expiring. A token acts only on its own organization.
 */
export function adminTokenRoutes(app: AppContext): Router {
  const router = new Router();

  router.post("/internal/admin-tokens", async (ctx) => {
    const input = validate(createToken, await readJsonObject(ctx, app.config.maxBodyBytes));
    const orgId: string = ctx.state.orgId;
    const actor = requestActorLabel(ctx);
    const minted = mintAdminToken(app.now());
    const token = await app.db.transaction().execute(async (trx) => {
      const token = await insertAdminToken(trx, {
        id: minted.id,
        orgId,
        name: input.name,
        role: input.role as "admin" | "read_only",
        hash: minted.hash,
        prefix: minted.prefix,
        createdBy: actor,
        expiresAt: input.expires_at ?? null,
      });
      await recordAudit(trx, {
        orgId,
        actor,
        action: "admin_token.create",
        targetType: "admin_token",
        targetId: token.id,
        after: token as unknown as Record<string, unknown>,
        requestId: ctx.state.requestId,
      });
      return token;
    });
    ctx.status = 201;
    ctx.set("Cache-Control", "no-store");
    // The one place the secret is ever shown.
    ctx.body = { ...token, org_id: orgId, token: minted.secret };
  });

  router.get("/internal/admin-tokens", async (ctx) => {
    ctx.body = { data: await listAdminTokens(app.db, ctx.state.orgId), next_cursor: null };
  });

  router.get("/internal/admin-tokens/:id", async (ctx) => {
    const id = validate(tokenId, ctx.params.id);
    const token = await getAdminToken(app.db, ctx.state.orgId, id);
    if (!token) throw new AppError("not_found", `admin token ${id} not found`, { field: "id" });
    ctx.body = token;
  });

  router.delete("/internal/admin-tokens/:id", async (ctx) => {
    const id = validate(tokenId, ctx.params.id);
    const orgId: string = ctx.state.orgId;
    const token = await app.db.transaction().execute(async (trx) => {
      const token = await revokeAdminToken(trx, orgId, id, app.now());
      if (!token) throw new AppError("not_found", `admin token ${id} not found or already revoked`, { field: "id" });
      // Dashboard sessions opened with the token end with it.
      const sessions = await deleteSessionsOfActor(trx, "admin_token", id);
      await recordAudit(trx, {
        orgId,
        actor: requestActorLabel(ctx),
        action: "admin_token.revoke",
        targetType: "admin_token",
        targetId: token.id,
        after: { ...token, closed_sessions: sessions } as unknown as Record<string, unknown>,
        requestId: ctx.state.requestId,
      });
      return token;
    });
    ctx.body = token;
  });

  return router;
}
