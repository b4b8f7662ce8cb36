import { AppError } from "@tollgate/shared";
import { writeWithChanges } from "../../changes/write-with-changes.js";
import { defineRoute } from "../../http/route.js";
import { waitForGatewaysParam } from "../../http/wait-for-gateways.js";
import { deleteApiKey } from "../../repositories/api-keys.js";
import { deletedSchema } from "../response-schemas.js";
import { keyId } from "./request-schemas.js";
import { auditKey, respond } from "./write-key.js";

export const deleteKey = defineRoute({
  method: "delete",
  path: "/internal/api-keys/:id",
  response: { schema: deletedSchema },
  params: { id: keyId },
  async handler({ ctx, orgId, params }, app) {
    const waitMs = waitForGatewaysParam(ctx);
    const { id } = params();
    const { result: key, revision } = await writeWithChanges(app, orgId, async (scope) => {
      const key = await deleteApiKey(scope.trx, orgId, id);
      if (!key) throw new AppError("not_found", `api key ${id} not found`, { field: "id" });
      scope.emit({ kind: "key_delete", resourceId: key.id, payload: { id: key.id } });
      await auditKey(scope, ctx, "api_key.delete", key.id, key, null);
      return key;
    });
    await respond(app, ctx, revision, waitMs, { id: key.id, deleted: true });
  },
});
