import { Code, ConnectError } from "@connectrpc/connect";
import type { AppContext } from "../context.js";

const GATEWAY_ID_RE = /^gw_[0-9a-z]{26}$/;
const known = new WeakMap<AppContext, Map<string, string>>();

/**
 * The gateway id a quota call names must be one that subscribed with a token
 * of the same organization (gateways register by subscribing). Cached: a
 * gateway's organization never changes.
 */
export async function gatewayOfOrg(app: AppContext, gatewayId: string, orgId: string): Promise<void> {
  if (!GATEWAY_ID_RE.test(gatewayId)) throw new ConnectError("gateway_id must be a gw_… id", Code.InvalidArgument);
  let cache = known.get(app);
  if (!cache) known.set(app, (cache = new Map()));
  let org = cache.get(gatewayId);
  if (org === undefined) {
    const row = await app.db.selectFrom("gateways").select("org_id").where("id", "=", gatewayId).executeTakeFirst();
    if (!row) {
      throw new ConnectError(`gateway ${gatewayId} is not registered: it must subscribe to the key stream first`, Code.FailedPrecondition);
    }
    org = row.org_id;
    if (cache.size > 10_000) cache.clear();
    cache.set(gatewayId, org);
  }
  if (org !== orgId) throw new ConnectError(`gateway ${gatewayId} belongs to another organization than this token`, Code.PermissionDenied);
}
