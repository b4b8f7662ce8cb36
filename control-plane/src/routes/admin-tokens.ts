import { AppError } from "@tollgate/shared";
import { z } from "zod";
import { mintAdminToken } from "../auth/admin-tokens.js";
import { ADMIN_TOKEN_ROLES, actorLabel, type Actor, type AdminTokenRole } from "../auth/roles.js";
import { deleteSessionsOfActor } from "../auth/sessions.js";
import { audit, auditWrite } from "../http/audit.js";
import { wholeList } from "../http/pagination.js";
import { defineRoute, routeGroup } from "../http/route.js";
import { getAdminToken, insertAdminToken, listAdminTokens, revokeAdminToken } from "../repositories/admin-tokens.js";
import { displayName, expiresAt } from "../http/schemas.js";

const createToken = z.strictObject({
  name: displayName,
  role: z
    .enum(ADMIN_TOKEN_ROLES as [AdminTokenRole, ...AdminTokenRole[]], { error: "must be admin or read_only" })
    .default("read_only"),
  expires_at: expiresAt.optional(),
});

const tokenId = z.string({ error: "must be an adt_… id" }).regex(/^adt_[0-9a-z]{26}$/, "must be an adt_… id");

/**
 * Organization-scoped admin tokens for automation: minted by the master key or an
 * organization admin, shown once, stored as SHA-256, listed by prefix, revocable
 * and optionally expiring. A token acts only on its own organization.
 */
export const adminTokenRoutes = routeGroup("admin-tokens", [
  defineRoute({
    method: "post",
    path: "/internal/admin-tokens",
    summary: "Mint an admin token; the only response that shows its secret",
    body: createToken,
    async handler({ ctx, orgId, body }, app) {
      const input = await body();
      const minted = mintAdminToken(app.now());
      const token = await app.db.transaction().execute(async (trx) => {
        const token = await insertAdminToken(trx, {
          id: minted.id,
          orgId,
          name: input.name,
          role: input.role,
          hash: minted.hash,
          prefix: minted.prefix,
          createdBy: actorLabel(ctx.state.actor as Actor),
          expiresAt: input.expires_at ?? null,
        });
        await auditWrite(trx, ctx, "admin_token", "create", token);
        return token;
      });
      ctx.status = 201;
      ctx.set("Cache-Control", "no-store");
      ctx.body = { ...token, org_id: orgId, token: minted.secret };
    },
  }),
  defineRoute({
    method: "get",
    path: "/internal/admin-tokens",
    async handler({ ctx, orgId }, app) {
      ctx.body = wholeList(await listAdminTokens(app.db, orgId));
    },
  }),
  defineRoute({
    method: "get",
    path: "/internal/admin-tokens/:id",
    params: { id: tokenId },
    async handler({ ctx, orgId, params }, app) {
      const id = params().id;
      const token = await getAdminToken(app.db, orgId, id);
      if (!token) throw new AppError("not_found", `admin token ${id} not found`, { field: "id" });
      ctx.body = token;
    },
  }),
  defineRoute({
    method: "delete",
    path: "/internal/admin-tokens/:id",
    summary: "Revoke an admin token and end the dashboard sessions opened with it",
    params: { id: tokenId },
    async handler({ ctx, orgId, params }, app) {
      const id = params().id;
      const token = await app.db.transaction().execute(async (trx) => {
        const token = await revokeAdminToken(trx, orgId, id, app.now());
        if (!token) throw new AppError("not_found", `admin token ${id} not found or already revoked`, { field: "id" });
        const closedSessions = await deleteSessionsOfActor(trx, "admin_token", id);
        await audit(trx, ctx, {
          action: "admin_token.revoke",
          targetType: "admin_token",
          targetId: token.id,
          after: { ...token, closed_sessions: closedSessions },
        });
        return token;
      });
      ctx.body = token;
    },
  }),
]);
