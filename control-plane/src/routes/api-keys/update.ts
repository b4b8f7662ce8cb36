import { AppError } from "@tollgate/shared";
import { defineRoute, type RouteDef } from "../../http/route.js";
import { waitForGatewaysParam } from "../../http/wait-for-gateways.js";
import { updateApiKey, type ApiKeyPatch } from "../../repositories/api-keys.js";
import { patchKeySchema } from "./key-schemas.js";
import { emptyBody, keyId } from "./request-schemas.js";
import { changedKeySchema } from "../response-schemas.js";
import { changeKey, respond } from "./write-key.js";

export const updateKey = defineRoute({
  method: "patch",
  path: "/internal/api-keys/:id",
  response: { schema: changedKeySchema },
  summary: "Change a key's settings",
  params: { id: keyId },
  body: patchKeySchema,
  async handler({ ctx, orgId, params, body }, app) {
    const waitMs = waitForGatewaysParam(ctx);
    const input = await body();
    const { key, revision } = await changeKey(app, ctx, params().id, "api_key.update", async ({ trx }, current) => {
      const budget = input.budget_usd !== undefined ? input.budget_usd : current.budget_usd;
      const thresholds = input.budget_alert_thresholds ?? current.budget_alert_thresholds;
      if (thresholds.length > 0 && budget === null) {
        throw new AppError(
          "invalid_request",
          "budget_alert_thresholds: needs budget_usd: thresholds are percentages of the budget",
          {
            field: input.budget_usd === null ? "budget_usd" : "budget_alert_thresholds",
          },
        );
      }
      return updateApiKey(trx, orgId, current.id, input as ApiKeyPatch, current);
    });
    await respond(app, ctx, revision, waitMs, { ...key });
  },
});

/** The status transitions: each names the statuses it applies to. */
const TRANSITIONS = [
  ["deactivate", "inactive", ["active", "expired"]],
  ["activate", "active", ["inactive", "revoked"]],
  ["revoke", "revoked", ["active", "inactive", "expired"]],
] as const;

export const changeKeyStatus: RouteDef<{ id: string }, undefined, Record<string, never>>[] = TRANSITIONS.map(
  ([action, status, allowedFrom]) =>
    defineRoute({
      method: "post",
      path: `/internal/api-keys/:id/${action}`,
      response: { schema: changedKeySchema },
      summary: `Move a key to ${status}`,
      params: { id: keyId },
      body: emptyBody,
      bodyKind: "optional",
      async handler({ ctx, orgId, params, body }, app) {
        const waitMs = waitForGatewaysParam(ctx);
        await body();
        const { key, revision } = await changeKey(
          app,
          ctx,
          params().id,
          `api_key.${action}`,
          async ({ trx }, current) => {
            if (!(allowedFrom as readonly string[]).includes(current.status)) {
              throw new AppError(
                "conflict",
                `api key ${current.id} is ${current.status}; ${action} applies to a key that is ${allowedFrom.join(" or ")}`,
              );
            }
            return updateApiKey(trx, orgId, current.id, { status }, current);
          },
        );
        await respond(app, ctx, revision, waitMs, { ...key });
      },
    }),
);
