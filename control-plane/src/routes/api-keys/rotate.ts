import { createHmac } from "node:crypto";
import { AppError, apiKeyFromSeed, generateApiKey } from "@tollgate/shared";
import type { Context } from "koa";
import { defineRoute } from "../../http/route.js";
import { waitForGatewaysParam } from "../../http/wait-for-gateways.js";
import { rotateApiKeySecret } from "../../repositories/api-keys.js";
import { findIdempotencyRecord, saveIdempotencyRecord } from "../../repositories/idempotency.js";
import { keyAction, rotateBody } from "./request-schemas.js";
import { revealedKeySchema } from "../response-schemas.js";
import { changeKey, respond, revealed } from "./write-key.js";

function idempotencyKeyOf(ctx: Context): string | undefined {
  const key = ctx.get("idempotency-key") || undefined;
  if (key !== undefined && (key.length < 8 || key.length > 200)) {
    throw new AppError("invalid_request", "Idempotency-Key must be 8 to 200 characters (a UUID is ideal)", {
      field: "Idempotency-Key",
    });
  }
  return key;
}

export const rotateKey = defineRoute({
  ...keyAction("rotate", "Replace a key's secret, optionally keeping the old one for a grace period", rotateBody),
  response: { schema: revealedKeySchema, description: "Rotated; `key` is the new secret, shown this once" },
  async handler({ ctx, orgId, params, body }, app) {
    const waitMs = waitForGatewaysParam(ctx);
    const input = await body();
    const { id } = params();
    const idempotencyKey = idempotencyKeyOf(ctx);
    // With an Idempotency-Key the new secret is derived from it, so a retry can
    // return the same secret without it ever being stored.
    const minted = idempotencyKey
      ? apiKeyFromSeed(
          createHmac("sha256", app.config.masterKey).update(`rotate:${orgId}:${id}:${idempotencyKey}`).digest(),
        )
      : generateApiKey();
    if (idempotencyKey) {
      const previous = await findIdempotencyRecord(app.db, orgId, "api_key.rotate", idempotencyKey);
      if (previous) {
        if (previous.targetId !== id) {
          throw new AppError("conflict", "this Idempotency-Key was already used to rotate another key", {
            field: "Idempotency-Key",
          });
        }
        ctx.set("idempotent-replayed", "true");
        ctx.body = { ...previous.response, key: minted.key };
        return;
      }
    }
    const grace = input.grace_seconds ?? 0;
    const { key, revision } = await changeKey(app, ctx, id, "api_key.rotate", async ({ trx }, current) => {
      if (current.status !== "active") {
        throw new AppError("conflict", `api key ${id} is ${current.status}: activate it before rotating`);
      }
      const rotated = await rotateApiKeySecret(trx, orgId, id, {
        hash: minted.hash,
        prefix: minted.prefix,
        // Kept even without a grace period (it ends at once): gateways then know the old secret as
        // rotated, a client not yet updated, and never count it as a guess that locks its address out.
        previousHash: current.key_hash,
        previousExpiresAt: new Date(Date.now() + grace * 1000),
      });
      if (idempotencyKey) {
        await saveIdempotencyRecord(trx, orgId, "api_key.rotate", idempotencyKey, {
          targetId: id,
          response: { ...rotated },
        });
      }
      return rotated;
    });
    await respond(app, ctx, revision, waitMs, revealed(key, minted.key));
  },
});
