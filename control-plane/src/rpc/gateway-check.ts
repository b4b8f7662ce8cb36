import { Code, ConnectError } from "@connectrpc/connect";
import type { AppContext } from "../context.js";

const GATEWAY_ID_RE = /^gw_[0-9a-z]{26}$/;
const known = new WeakMap<AppContext, Map<string, { org: string; atMs: number }>>();
const CACHE_MS = 60_000;

/**
 * The gateway id a quota call names must be one that subscribed with a token
 * of the same organization (gateways register by subscribing). Cached for a
 * minute: an id only moves to another organization after its token there is
 * revoked (see upsertConnectedGateway).
 */
export async function gatewayOfOrg(app: AppContext, gatewayId: string, orgId: string): Promise<void> {
  if (!GATEWAY_ID_RE.test(gatewayId)) throw new ConnectError("gateway_id must be a gw_… id", Code.InvalidArgument);
  let cache = known.get(app);
  if (!cache) known.set(app, (cache = new Map()));
  const hit = cache.get(gatewayId);
  let org = hit && Date.now() - hit.atMs < CACHE_MS ? hit.org : undefined;
  if (org === undefined) {
    const row = await app.db.selectFrom("gateways").select("org_id").where("id", "=", gatewayId).executeTakeFirst();
    if (!row) {
      throw new ConnectError(
        `gateway ${gatewayId} is not registered: it must subscribe to the key stream first`,
        Code.FailedPrecondition,
      );
    }
    org = row.org_id;
    if (cache.size > 10_000) cache.clear();
    cache.set(gatewayId, { org, atMs: Date.now() });
  }
  if (org !== orgId)
    throw new ConnectError(
      `gateway ${gatewayId} belongs to another organization than this token`,
      Code.PermissionDenied,
    );
}

/** InvalidArgument naming the field, as the admin API's 400s do. */
export function invalid(field: string, why: string): ConnectError {
  return new ConnectError(`${field}: ${why}`, Code.InvalidArgument);
}

const MAX_COUNT = BigInt(Number.MAX_SAFE_INTEGER);

/** A count or amount: whole, from 0 to 2^53 (it becomes a JS number). */
export function checkCount(value: bigint, field: string): void {
  if (value < 0n || value > MAX_COUNT) throw invalid(field, "must be between 0 and 2^53");
}
