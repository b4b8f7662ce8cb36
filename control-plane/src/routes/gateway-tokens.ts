import { AppError, newId, randomBase62 } from "@tollgate/shared";
import { z } from "zod";
import { wholeList } from "../http/pagination.js";
import { defineRoute, routeGroup } from "../http/route.js";
import { GATEWAY_TOKEN_PREFIX, hashGatewayToken } from "../auth/credentials.js";
import { publishTokenRevocation } from "../changes/write-with-changes.js";
import { auditWrite } from "../http/audit.js";
import { insertGatewayToken, listGatewayTokens, revokeGatewayToken } from "../repositories/gateway-tokens.js";
import { gatewayTokenSchema, pageOf } from "./response-schemas.js";
import { displayName, idOf } from "../http/schemas.js";

const createToken = z.strictObject({ name: displayName });

export const gatewayTokenRoutes = routeGroup("gateway-tokens", [
  defineRoute({
    method: "post",
    path: "/internal/gateway-tokens",
    response: {
      status: 201,
      schema: gatewayTokenSchema.extend({ org_id: z.string(), token: z.string() }),
      description: "Created; `token` is shown this once",
    },
    body: createToken,
    async handler({ ctx, body }, app) {
      const input = await body();
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
        await auditWrite(trx, ctx, "gateway_token", "create", token);
        return token;
      });
      ctx.status = 201;
      // Shown once, like an API key.
      ctx.body = { ...token, org_id: orgId, token: secret };
    },
  }),
  defineRoute({
    method: "get",
    path: "/internal/gateway-tokens",
    response: { schema: pageOf(gatewayTokenSchema) },
    async handler({ ctx }, app) {
      const rows = await listGatewayTokens(app.db, ctx.state.orgId);
      ctx.body = wholeList(rows);
    },
  }),
  defineRoute({
    method: "delete",
    path: "/internal/gateway-tokens/:id",
    response: { schema: gatewayTokenSchema },
    params: { id: idOf("gwt") },
    async handler({ ctx, params }, app) {
      const id = params().id;
      const orgId = ctx.state.orgId;
      const token = await app.db.transaction().execute(async (trx) => {
        const token = await revokeGatewayToken(trx, orgId, id);
        if (!token)
          throw new AppError("not_found", `gateway token ${id} not found or already revoked`, { field: "id" });
        await publishTokenRevocation(trx, app.dbKind, id);
        await auditWrite(trx, ctx, "gateway_token", "revoke", token);
        return token;
      });
      // Close that token's open streams on this replica now; other replicas hear it through NOTIFY.
      app.streams.revokeToken(id);
      ctx.body = token;
    },
  }),
]);
