import { sql } from "kysely";
import type { Db } from "../db/database.js";
import { toIso, toNumber } from "./rows.js";

export interface GatewayStatus {
  id: string;
  name: string;
  org_id: string;
  version: string;
  connected: boolean;
  remote_address: string | null;
  applied_revision: number;
  current_revision: number;
  lag: number;
  last_error: string | null;
  connected_at: string | null;
  last_seen_at: string | null;
  created_at: string;
}

/**
 * Records a gateway's (re)connection. A gateway id stays with its
 * organization while the token it last used there is active: another
 * organization's token cannot take it over (and with it the id's usage
 * deduplication). Null when the id belongs to another organization.
 */
export async function upsertConnectedGateway(
  db: Db,
  input: { id: string; orgId: string; tokenId: string; name: string; version: string; remoteAddress: string | null },
): Promise<Date | null> {
  const existing = await db
    .selectFrom("gateways as g")
    .leftJoin("gateway_tokens as t", "t.id", "g.token_id")
    .select(["g.org_id", "t.revoked_at"])
    .where("g.id", "=", input.id)
    .executeTakeFirst();
  // Re-enrolled into another organization after its old token was revoked: allowed.
  if (existing && existing.org_id !== input.orgId && existing.revoked_at === null) return null;
  const now = new Date();
  // What a (re)connection sets, on a new row and on the known one alike.
  const connection = {
    org_id: input.orgId,
    token_id: input.tokenId,
    name: input.name,
    version: input.version,
    connected: true,
    remote_address: input.remoteAddress,
    connected_at: now,
    last_seen_at: now,
  };
  await db
    .insertInto("gateways")
    .values({ id: input.id, ...connection, applied_revision: 0, last_error: null })
    .onConflict((oc) => oc.column("id").doUpdateSet(connection))
    .execute();
  return now;
}

/** Marks the gateway offline unless a newer stream of the same gateway connected since. */
export async function markGatewayDisconnected(db: Db, id: string, connectedAt: Date): Promise<void> {
  await db
    .updateTable("gateways")
    .set({ connected: false, last_seen_at: new Date() })
    .where("id", "=", id)
    .where("connected_at", "=", connectedAt)
    .execute();
}

/**
 * Every gateway of the organization. A gateway counts as connected while its
 * stream is open and it was heard from (acknowledgement or heartbeat) within
 * `offlineAfterMs`; one that misses its window shows as offline.
 */
export async function listGateways(db: Db, orgId: string, offlineAfterMs: number): Promise<GatewayStatus[]> {
  const now = Date.now();
  const rows = await db
    .selectFrom("gateways as g")
    .innerJoin("orgs as o", "o.id", "g.org_id")
    .selectAll("g")
    .select("o.revision as current_revision")
    .where("g.org_id", "=", orgId)
    .orderBy("g.id")
    .execute();
  return rows.map((r) => {
    const applied = toNumber(r.applied_revision);
    const current = toNumber(r.current_revision);
    return {
      id: r.id,
      name: r.name,
      org_id: r.org_id,
      version: r.version,
      connected: r.connected && r.last_seen_at !== null && now - new Date(r.last_seen_at).getTime() <= offlineAfterMs,
      remote_address: r.remote_address,
      applied_revision: applied,
      current_revision: current,
      lag: Math.max(0, current - applied),
      last_error: r.last_error,
      connected_at: toIso(r.connected_at),
      last_seen_at: toIso(r.last_seen_at),
      created_at: toIso(r.created_at)!,
    };
  });
}
