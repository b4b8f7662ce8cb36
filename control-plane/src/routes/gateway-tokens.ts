import Router from "@koa/router";
import { AppError, newId, randomBase62 } from "@tollgate/shared";
import { z } from "zod";
import type { AppContext } from "../context.js";
import { GATEWAY_TOKEN_PREFIX, hashGatewayToken } from "../auth/credentials.js";
import { publishTokenRevocation } from "../changes/write-with-changes.js";
import { readJsonObject, validate } from "../http/body.js";
import { recordAudit } from "../repositories/audit-log.js";
import { insertGatewayToken, listGatewayTokens, revokeGatewayToken } from "../repositories/gateway-tokens.js";
import { displayName, idOf } from "./schemas.js";

const createToken = z.strictObject({ name: displayName });

export function gatewayTokenRoutes(app: AppContext): Router {
  const router = new Router();

  router.post("/internal/gateway-tokens", async (ctx) => {
    const input = validate(createToken, await readJsonObject(ctx, app.config.maxBodyBytes));
    const orgId = ctx.state.orgId;
    const secret = GATEWAY_TOKEN_PREFIX + randomBase62(40);
    const token = await app.db.transaction().execute(async (trx) => {
      const token = await insertGatewayToken(trx, {
        id: newId("gwt"),
        orgId,
        name: input.name,
        hash: hashGatewayToken(secret),
        prefix: secret.slice(0, 12),
      });
      await recordAudit(trx, {
        orgId,
        actor: ctx.state.actor,
        action: "gateway_token.create",
        targetType: "gateway_token",
        targetId: token.id,
        after: token as unknown as Record<string, unknown>,
        requestId: ctx.state.requestId,
      });
      return token;
    });
    ctx.status = 201;
    // Shown once, like an API key.
    ctx.body = { ...token, org_id: orgId, token: secret };
  });

  router.get("/internal/gateway-tokens", async (ctx) => {
    const rows = await listGatewayTokens(app.db, ctx.state.orgId);
    ctx.body = { data: rows, next_cursor: null };
  });

  router.delete("/internal/gateway-tokens/:id", async (ctx) => {
    const id = validate(idOf("gwt"), ctx.params.id);
    const orgId = ctx.state.orgId;
    const token = await app.db.transaction().execute(async (trx) => {
      const token = await revokeGatewayToken(trx, orgId, id);
      if (!token) throw new AppError("not_found", `gateway token ${id} not found or already revoked`, { field: "id" });
      await publishTokenRevocation(trx, app.dbKind, id);
      await recordAudit(trx, {
        orgId,
        actor: ctx.state.actor,
        action: "gateway_token.revoke",
        targetType: "gateway_token",
        targetId: token.id,
        after: token as unknown as Record<string, unknown>,
        requestId: ctx.state.requestId,
      });
      return token;
    });
    // Close that token's open streams on this replica now; other replicas hear it through NOTIFY.
    app.streams.revokeToken(id);
    ctx.body = token;
  });

  return router;
}
