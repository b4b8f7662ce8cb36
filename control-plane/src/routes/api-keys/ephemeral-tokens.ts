import { AppError, signEphemeralToken } from "@tollgate/shared";
import { writeWithChanges } from "../../changes/write-with-changes.js";
import { audit } from "../../http/audit.js";
import { defineRoute } from "../../http/route.js";
import { getApiKey } from "../../repositories/api-keys.js";
import { currentSigningKey } from "../../repositories/signing-keys.js";
import { z } from "zod";
import { ephemeralBody, keyAction } from "./request-schemas.js";

export const issueEphemeralToken = defineRoute({
  ...keyAction("ephemeral-tokens", "Sign a short-lived token that gateways verify offline", ephemeralBody),
  response: {
    status: 201,
    schema: z.object({ token: z.string(), token_id: z.string(), key_id: z.string(), expires_at: z.string() }),
  },
  async handler({ ctx, orgId, params, body }, app) {
    const input = await body();
    const { id } = params();
    const { result, revision } = await writeWithChanges(app, orgId, async (scope) => {
      const key = await getApiKey(scope.trx, orgId, id);
      if (!key) throw new AppError("not_found", `api key ${id} not found`, { field: "id" });
      if (key.status !== "active")
        throw new AppError("conflict", `api key ${id} is ${key.status}: only an active key can issue tokens`);
      const signing = await currentSigningKey(scope.trx, orgId, app.config.masterKey);
      if (signing.created) scope.emit({ kind: "signing_key_upsert", resourceId: signing.id, payload: signing.record });
      const now = Math.floor(Date.now() / 1000);
      // Never outlive the parent key.
      const parentExpiry = key.expires_at ? Math.floor(Date.parse(key.expires_at) / 1000) : Number.POSITIVE_INFINITY;
      const exp = Math.min(now + input.ttl_seconds, parentExpiry);
      const { token, claims } = signEphemeralToken(
        { kid: signing.id, key_id: id, org_id: orgId, iat: now, exp },
        signing.privateKey,
      );
      await audit(scope, ctx, {
        action: "api_key.ephemeral_token",
        targetType: "api_key",
        targetId: id,
        after: { token_id: claims.jti, expires_at: new Date(exp * 1000).toISOString(), ttl_seconds: exp - now },
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
  },
});
