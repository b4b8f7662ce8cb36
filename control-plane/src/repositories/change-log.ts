import { sql } from "kysely";
import type { Db } from "../db/database.js";
import type { McpSettingsJson, PriceValues } from "../db/schema.js";
import type { McpServerSyncRecord } from "./mcp-servers.js";
import { toIso, toNumber } from "./rows.js";

/** The synced state of one key, as written to the change log and sent in snapshots. */
export interface KeySyncRecord {
  id: string;
  /** SHA-256 of the key, hex. */
  key_hash: string;
  key_prefix: string;
  name: string;
  user_id: string;
  team_id: string | null;
  status: string;
  expires_at: string | null;
  created_at: string;
  rpm_limit: number | null;
  tpm_limit: number | null;
  /** Added with quotas: payloads written before lack them. */
  tokens_per_day_limit?: number | null;
  max_concurrent_requests?: number | null;
  budget_period?: string;
  owner_limits?: OwnerLimits;
  budget_usd: number | null;
  budget_alert_thresholds: number[];
  allowed_providers: string[];
  allowed_models: string[];
  ip_allowlist: string[];
  metadata: Record<string, unknown>;
  mcp: McpSettingsJson;
  /** Hex; set only while a rotation grace period runs. */
  previous_key_hash: string | null;
  previous_key_expires_at: string | null;
}

/** Limits of the key's user and team, copied into the key's sync record. */
export interface OwnerLimits {
  user_rpm_limit: number | null;
  user_tpm_limit: number | null;
  user_daily_token_limit: number | null;
  team_tpm_limit: number | null;
  team_daily_token_limit: number | null;
}

/** The public half of an organization's token-signing key. */
export interface SigningKeyRecord {
  id: string;
  /** Raw Ed25519 public key, hex. */
  public_key: string;
  created_at: string;
}

/** One row of the price table as synced: USD per million tokens. */
export interface ModelPriceRecord extends PriceValues {
  provider: string;
  model: string;
  source: "default" | "override";
}

export type ChangeInput =
  | { kind: "key_upsert"; resourceId: string; payload: KeySyncRecord }
  | { kind: "key_delete"; resourceId: string; payload: { id: string } }
  | { kind: "signing_key_upsert"; resourceId: string; payload: SigningKeyRecord }
  | { kind: "model_price_upsert"; resourceId: string; payload: ModelPriceRecord }
  | { kind: "model_price_delete"; resourceId: string; payload: { provider: string; model: string } }
  | { kind: "mcp_server_upsert"; resourceId: string; payload: McpServerSyncRecord }
  | { kind: "mcp_server_delete"; resourceId: string; payload: { id: string } };

export interface ChangeEntry {
  revision: number;
  kind: ChangeInput["kind"];
  resourceId: string;
  payload: unknown;
  committedAt: string;
}

/**
 * Allocates the next revision of the organization and writes the change. The
 * UPDATE takes the organization's row lock and holds it until commit, so a
 * later writer can only allocate N+1 after N has committed: commit order equals
 * revision order, and a reader never sees N+1 without N.
 */
export async function appendChange(trx: Db, orgId: string, change: ChangeInput): Promise<number> {
  const row = await trx
    .updateTable("orgs")
    .set({ revision: sql`revision + 1` })
    .where("id", "=", orgId)
    .returning("revision")
    .executeTakeFirstOrThrow();
  const revision = toNumber(row.revision);
  await trx
    .insertInto("change_log")
    .values({
      org_id: orgId,
      revision,
      kind: change.kind,
      resource_id: change.resourceId,
      payload: JSON.stringify(change.payload),
    })
    .execute();
  return revision;
}

/**
 * Writes many changes under one allocation: the organization's counter moves
 * by their number at once, and the entries get consecutive revisions.
 */
export async function appendChanges(trx: Db, orgId: string, changes: ChangeInput[]): Promise<number | null> {
  if (changes.length === 0) return null;
  if (changes.length === 1) return appendChange(trx, orgId, changes[0]!);
  const row = await trx
    .updateTable("orgs")
    .set({ revision: sql`revision + ${changes.length}` })
    .where("id", "=", orgId)
    .returning("revision")
    .executeTakeFirstOrThrow();
  const last = toNumber(row.revision);
  const first = last - changes.length + 1;
  for (let i = 0; i < changes.length; i += 1000) {
    await trx
      .insertInto("change_log")
      .values(
        changes.slice(i, i + 1000).map((c, j) => ({
          org_id: orgId,
          revision: first + i + j,
          kind: c.kind,
          resource_id: c.resourceId,
          payload: JSON.stringify(c.payload),
        })),
      )
      .execute();
  }
  return last;
}

/** Changes after `after`, in revision order. */
export async function readChanges(db: Db, orgId: string, after: number, limit: number): Promise<ChangeEntry[]> {
  const rows = await db
    .selectFrom("change_log")
    .select(["revision", "kind", "resource_id", "payload", "committed_at"])
    .where("org_id", "=", orgId)
    .where("revision", ">", after)
    .orderBy("revision")
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    revision: toNumber(r.revision),
    kind: r.kind as ChangeInput["kind"],
    resourceId: r.resource_id,
    payload: typeof r.payload === "string" ? JSON.parse(r.payload) : r.payload,
    committedAt: toIso(r.committed_at as Date) ?? new Date().toISOString(),
  }));
}

/** Lowest revision still held in the log, or null when the log of this organization is empty. */
export async function oldestRetainedRevision(db: Db, orgId: string): Promise<number | null> {
  const row = await db
    .selectFrom("change_log")
    .select((eb) => eb.fn.min("revision").as("min"))
    .where("org_id", "=", orgId)
    .executeTakeFirst();
  return row?.min === null || row?.min === undefined ? null : toNumber(row.min as string | number);
}

/**
 * Deletes change-log entries committed before `before`. Gateways behind the
 * oldest remaining entry get a full snapshot when they resubscribe.
 */
export async function compactChangeLog(db: Db, before: Date): Promise<number> {
  const result = await db.deleteFrom("change_log").where("committed_at", "<", before).executeTakeFirst();
  return Number(result.numDeletedRows);
}
