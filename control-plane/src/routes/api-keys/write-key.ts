import { AppError } from "@tollgate/shared";
import type { Context } from "koa";
import { awaitGateways } from "../../changes/await-gateways.js";
import { writeWithChanges, type WriteScope } from "../../changes/write-with-changes.js";
import type { AppContext } from "../../context.js";
import { audit } from "../../http/audit.js";
import { lockApiKey, type ApiKey } from "../../repositories/api-keys.js";
import { keySyncRecord } from "../../repositories/key-sync-records.js";

/** What a create or rotate shows once: the key with its secret. */
export function revealed(key: ApiKey, secret: string) {
  return { ...key, key: secret };
}

/** Audits a change to one key. */
export function auditKey(scope: WriteScope, ctx: Context, action: string, targetId: string, before: unknown, after: unknown) {
  return audit(scope.trx, ctx, { action, targetType: "api_key", targetId, before: before ?? null, after: after ?? null });
}

/** Locks a key, applies `change`, syncs and audits it; 404 when it does not exist. */
export async function changeKey(
  app: AppContext,
  ctx: Context,
  id: string,
  action: string,
  change: (scope: WriteScope, current: ApiKey & { key_hash: Buffer }) => Promise<ApiKey>,
): Promise<{ key: ApiKey; revision: number | null }> {
  const orgId: string = ctx.state.orgId;
  const { result, revision } = await writeWithChanges(app, orgId, async (scope) => {
    const current = await lockApiKey(scope.trx, orgId, id);
    if (!current) throw new AppError("not_found", `api key ${id} not found`, { field: "id" });
    const updated = await change(scope, current);
    scope.emit({ kind: "key_upsert", resourceId: id, payload: await keySyncRecord(scope.trx, orgId, id) });
    const { key_hash: _secretHash, ...before } = current;
    await auditKey(scope, ctx, action, id, before, updated);
    return updated;
  });
  return { key: result, revision };
}

/** Answers with the revision header and, when asked, which gateways applied it in time. */
export async function respond(
  app: AppContext,
  ctx: Context,
  revision: number | null,
  waitMs: number | undefined,
  payload: Record<string, unknown>,
): Promise<void> {
  if (revision !== null) ctx.set("x-tollgate-revision", String(revision));
  ctx.body = {
    ...payload,
    ...(waitMs !== undefined && revision !== null ? { sync: await awaitGateways(app, ctx.state.orgId, revision, waitMs) } : {}),
  };
}
