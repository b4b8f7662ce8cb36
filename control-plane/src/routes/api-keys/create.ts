import { AppError, generateApiKey, newId } from "@tollgate/shared";
import { writeWithChanges } from "../../changes/write-with-changes.js";
import { auditMany } from "../../http/audit.js";
import { defineRoute } from "../../http/route.js";
import { waitForGatewaysParam } from "../../http/wait-for-gateways.js";
import { insertApiKeyRows, insertApiKeys } from "../../repositories/api-keys.js";
import { toApiKey } from "../../repositories/api-key-rows.js";
import { keyOwner, keySyncRecordOf, keySyncRecords } from "../../repositories/key-sync-records.js";
import { existingUserIds } from "../../repositories/users.js";
import type { AdminActor } from "../../http/admin-auth.js";
import { createKeySchema, settingsFrom } from "./key-schemas.js";
import { checkMemberKeyCreate } from "./member-keys.js";
import { bulkCreate } from "./request-schemas.js";
import { pageOf, revealedKeySchema } from "../response-schemas.js";
import { z } from "zod";
import { auditKey, respond, revealed } from "./write-key.js";

export const createKey = defineRoute({
  method: "post",
  path: "/internal/api-keys",
  response: { status: 201, schema: revealedKeySchema, description: "Created; `key` is the secret, shown this once" },
  summary: "Create a key; the only response that shows its secret",
  body: createKeySchema,
  async handler({ ctx, orgId, body }, app) {
    const waitMs = waitForGatewaysParam(ctx);
    const input = await body();
    const minted = generateApiKey();
    const { result: key, revision } = await writeWithChanges(app, orgId, async (scope) => {
      const owner = await keyOwner(scope.trx, orgId, input.user_id);
      if (!owner) throw new AppError("not_found", `user ${input.user_id} not found`, { field: "user_id" });
      await checkMemberKeyCreate(scope.trx, orgId, ctx.state.actor as AdminActor, input.user_id, settingsFrom(input));
      const [row] = await insertApiKeyRows(scope.trx, [
        {
          id: newId("ak"),
          orgId,
          userId: input.user_id,
          name: input.name,
          hash: minted.hash,
          prefix: minted.prefix,
          settings: settingsFrom(input),
        },
      ]);
      // Built from what this transaction wrote and read, as a re-read after commit would show it.
      const key = toApiKey({ ...row!, owner: owner.owner });
      scope.emit({ kind: "key_upsert", resourceId: key.id, payload: keySyncRecordOf(row!, owner) });
      await auditKey(scope, ctx, "api_key.create", key.id, null, key);
      return key;
    });
    ctx.status = 201;
    // The one place the secret is ever shown.
    await respond(app, ctx, revision, waitMs, revealed(key, minted.key));
  },
});

export const createKeys = defineRoute({
  method: "post",
  path: "/internal/api-keys/bulk",
  response: { status: 201, schema: pageOf(revealedKeySchema).extend({ revision: z.number().int().nullable() }) },
  summary: "Import many keys in one transaction",
  body: bulkCreate,
  bodyKind: "bulk",
  async handler({ ctx, orgId, body }, app) {
    const waitMs = waitForGatewaysParam(ctx);
    const input = await body();
    const minted = input.keys.map(() => generateApiKey());
    const { result: keys, revision } = await writeWithChanges(app, orgId, async (scope) => {
      const { trx, emit } = scope;
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
      for (const record of await keySyncRecords(
        trx,
        orgId,
        keys.map((k) => k.id),
        { lockOwners: true },
      )) {
        emit({ kind: "key_upsert", resourceId: record.id, payload: record });
      }
      await auditMany(
        scope,
        ctx,
        keys.map((key) => ({ action: "api_key.create", targetType: "api_key", targetId: key.id, after: key })),
      );
      return keys;
    });
    ctx.status = 201;
    await respond(app, ctx, revision, waitMs, { data: keys.map((key, i) => revealed(key, minted[i]!.key)), revision });
  },
});
