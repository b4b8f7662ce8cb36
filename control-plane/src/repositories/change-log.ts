import { sql } from "kysely";
import type { Db } from "../db/database.js";
import type { McpSettingsJson, PriceValues } from "../db/schema.js";
import { insertAuditRows, type AuditRow } from "./audit-log.js";
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

/** Rows to write with the change-log entries, in the same statement. */
export interface AppendOptions {
  /** Audit rows of the same write (see `auditRows`). */
  audits?: AuditRow[];
  /** Postgres only: NOTIFY on this channel with the organization id, delivered at commit. */
  notifyChannel?: string;
}

/**
 * Allocates the next revision of the organization and writes the change. The
 * UPDATE takes the organization's row lock and holds it until commit, so a
 * later writer can only allocate N+1 after N has committed: commit order equals
 * revision order, and a reader never sees N+1 without N.
 */
export async function appendChange(trx: Db, orgId: string, change: ChangeInput): Promise<number> {
  return (await appendChanges(trx, orgId, [change]))!;
}

/**
 * Writes many changes under one allocation: the organization's counter moves
 * by their number at once (taking its row lock until commit, as `appendChange`),
 * and the entries get consecutive revisions. One statement does it all, with
 * the write's audit rows and its NOTIFY: each round trip to Postgres is most
 * of an admin write's time (bench/README.md, "one key change, stage by stage").
 */
export async function appendChanges(
  trx: Db,
  orgId: string,
  changes: ChangeInput[],
  options: AppendOptions = {},
): Promise<number | null> {
  if (changes.length === 0) return null;
  const entries = JSON.stringify(changes.map((c) => ({ kind: c.kind, id: c.resourceId, payload: c.payload })));
  const notify = options.notifyChannel ? sql`, pg_notify(${options.notifyChannel}, ${orgId})` : sql``;
  // Data-modifying CTEs all run to completion, referenced or not; the entries
  // join `allocated`, so none is written when the organization does not exist.
  const { rows } = await sql<{ revision: string | number }>`
    with allocated as (
      update orgs set revision = revision + ${changes.length} where id = ${orgId} returning revision
    ), logged as (
      insert into change_log (org_id, revision, kind, resource_id, payload)
      select ${orgId}, a.revision - ${changes.length} + c.ord, c.e->>'kind', c.e->>'id', c.e->'payload'
      from allocated a, jsonb_array_elements(${entries}::jsonb) with ordinality as c(e, ord)
    ), audited as (${insertAuditRows(options.audits ?? [])})
    select revision${notify} from allocated`.execute(trx);
  if (!rows[0]) throw new Error(`organization ${orgId} not found`);
  return toNumber(rows[0].revision);
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
