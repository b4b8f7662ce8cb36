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
export function auditKey(
  scope: WriteScope,
  ctx: Context,
  action: string,
  targetId: string,
  before: unknown,
  after: unknown,
) {
  return audit(scope, ctx, {
    action,
    targetType: "api_key",
    targetId,
    before: before ?? null,
    after: after ?? null,
  });
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

/**
 * Answers with the revision header once the organization's connected gateways
 * applied it (read-your-writes), waiting at most WAIT_FOR_GATEWAYS_DEFAULT, or the
 * `?wait_for_gateways` asked for (which adds the receipt to the body; `0`: no wait).
 * Only gateways with an open stream count, so a dead one costs at most the wait.
 */
export async function respond(
  app: AppContext,
  ctx: Context,
  revision: number | null,
  waitMs: number | undefined,
  payload: Record<string, unknown>,
): Promise<void> {
  if (revision === null || waitMs === 0 || (waitMs === undefined && app.config.waitForGatewaysDefaultMs === 0)) {
    if (revision !== null) ctx.set("x-tollgate-revision", String(revision));
    ctx.body = payload;
    return;
  }
  ctx.set("x-tollgate-revision", String(revision));
  const receipt = await awaitGateways(app, ctx.state.orgId, revision, waitMs ?? app.config.waitForGatewaysDefaultMs);
  ctx.set(
    "x-tollgate-sync",
    `${receipt.complete ? "complete" : "incomplete"}; confirmed=${receipt.confirmed.length}; pending=${receipt.pending.length}`,
  );
  ctx.body = waitMs === undefined ? payload : { ...payload, sync: receipt };
}
