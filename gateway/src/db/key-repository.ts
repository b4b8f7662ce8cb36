import type { Database } from "better-sqlite3";
import { EMPTY_POLICY, type KeyPolicy, type StoredKey } from "../auth/stored-key.js";

interface KeyRow {
  id: string;
  key_hash: Buffer;
  key_prefix: string;
  name: string;
  user_id: string;
  team_id: string;
  status: number;
  expires_at_ms: number | null;
  created_at_ms: number;
  updated_revision: number;
  policy: string;
  metadata_json: string;
  previous_key_hash: Buffer | null;
  previous_key_expires_at_ms: number | null;
}

/**
 * The policy column back into a KeyPolicy. Rows written before a field
 * existed (or before the column did: `{}`) get its default.
 */
function parsePolicy(text: string): KeyPolicy {
  const p = JSON.parse(text) as Partial<KeyPolicy>;
  return {
    rpmLimit: p.rpmLimit ?? null,
    tpmLimit: p.tpmLimit ?? null,
    tokensPerDayLimit: p.tokensPerDayLimit ?? null,
    maxConcurrentRequests: p.maxConcurrentRequests ?? null,
    budgetUsd: p.budgetUsd ?? null,
    budgetPeriod: p.budgetPeriod ?? 1,
    budgetAlertThresholds: p.budgetAlertThresholds ?? [],
    ownerLimits: p.ownerLimits ?? [],
    allowedProviders: p.allowedProviders ?? [],
    allowedModels: p.allowedModels ?? [],
    ipAllowlist: p.ipAllowlist ?? [],
    mcp: p.mcp ?? null,
  };
}

/** Deterministic JSON of a policy (fixed field order), so equal policies compare equal as text. */
export function serializePolicy(p: KeyPolicy): string {
  return JSON.stringify({
    rpmLimit: p.rpmLimit,
    tpmLimit: p.tpmLimit,
    tokensPerDayLimit: p.tokensPerDayLimit,
    maxConcurrentRequests: p.maxConcurrentRequests,
    budgetUsd: p.budgetUsd,
    budgetPeriod: p.budgetPeriod,
    budgetAlertThresholds: p.budgetAlertThresholds,
    ownerLimits: p.ownerLimits.map((l) => ({
      scope: l.scope,
      subjectId: l.subjectId,
      metric: l.metric,
      limit: l.limit,
    })),
    allowedProviders: p.allowedProviders,
    allowedModels: p.allowedModels,
    ipAllowlist: p.ipAllowlist,
    mcp: p.mcp && {
      enabled: p.mcp.enabled,
      accessMode: p.mcp.accessMode,
      servers: p.mcp.servers,
      tools: Object.fromEntries(
        Object.keys(p.mcp.tools)
          .sort()
          .map((k) => [k, p.mcp!.tools[k]]),
      ),
    },
  });
}

/** Policy → its serialized text, computed once per policy object (interned policies are shared by many keys). */
const policyTexts = new WeakMap<KeyPolicy, string>();

/** serializePolicy, remembered per policy object. */
export function policyText(p: KeyPolicy): string {
  let text = policyTexts.get(p);
  if (text === undefined) {
    text = serializePolicy(p);
    policyTexts.set(p, text);
  }
  return text;
}

function isEmptyPolicy(p: KeyPolicy): boolean {
  return (
    p.rpmLimit === null &&
    p.tpmLimit === null &&
    p.tokensPerDayLimit === null &&
    p.maxConcurrentRequests === null &&
    p.budgetUsd === null &&
    p.budgetPeriod === 1 &&
    p.budgetAlertThresholds.length === 0 &&
    p.ownerLimits.length === 0 &&
    p.allowedProviders.length === 0 &&
    p.allowedModels.length === 0 &&
    p.ipAllowlist.length === 0 &&
    p.mcp === null
  );
}

/**
 * Shares one object between equal policies and one string between equal owner ids, within one
 * load or snapshot: most keys carry the same policy, and a user or team owns many keys. At
 * 1,000,000 keys this is a few hundred bytes less per key in memory (bench/README.md).
 */
export class KeyInterner {
  private readonly policies = new Map<string, KeyPolicy>();
  private readonly strings = new Map<string, string>();

  policy(p: KeyPolicy, text?: string): KeyPolicy {
    // Most keys have no limits or scopes of their own: no need to serialize theirs to find out.
    if (text === undefined && isEmptyPolicy(p)) return EMPTY_POLICY as KeyPolicy;
    text ??= policyText(p);
    const shared = this.policies.get(text);
    if (shared !== undefined) return shared;
    this.policies.set(text, p);
    policyTexts.set(p, text);
    return p;
  }

  string(s: string): string {
    const shared = this.strings.get(s);
    if (shared !== undefined) return shared;
    this.strings.set(s, s);
    return s;
  }

  /** The key with its policy and owner ids shared. */
  key(k: StoredKey, text?: string): StoredKey {
    k.policy = this.policy(k.policy, text);
    k.userId = this.string(k.userId);
    k.teamId = this.string(k.teamId);
    return k;
  }
}

export interface KeyRepository {
  all(): StoredKey[];
  /** Every key, one row at a time (no array of them all), policies and owner ids shared. */
  each(): Iterable<StoredKey>;
  get(id: string): StoredKey | undefined;
  upsert(key: StoredKey, revision: number): void;
  delete(id: string): boolean;
  count(): number;
}

function fromRow(r: KeyRow): StoredKey {
  return { ...fromRowWithoutPolicy(r), policy: parsePolicy(r.policy) };
}

function fromRowWithoutPolicy(r: KeyRow): Omit<StoredKey, "policy"> {
  return {
    id: r.id,
    keyHash: r.key_hash,
    prefix: r.key_prefix,
    name: r.name,
    userId: r.user_id,
    teamId: r.team_id,
    status: r.status,
    expiresAtMs: r.expires_at_ms,
    createdAtMs: r.created_at_ms,
    metadataJson: r.metadata_json,
    previousKeyHash: r.previous_key_hash,
    previousKeyExpiresAtMs: r.previous_key_expires_at_ms,
  };
}

export function createKeyRepository(db: Database): KeyRepository {
  const selectAll = db.prepare<[], KeyRow>(`SELECT * FROM keys`);
  const selectOne = db.prepare<[string], KeyRow>(`SELECT * FROM keys WHERE id = ?`);
  const upsert = db.prepare(
    `INSERT INTO keys (id, key_hash, key_prefix, name, user_id, team_id, status, expires_at_ms, created_at_ms, updated_revision,
                       policy, metadata_json, previous_key_hash, previous_key_expires_at_ms)
     VALUES (@id, @key_hash, @key_prefix, @name, @user_id, @team_id, @status, @expires_at_ms, @created_at_ms, @updated_revision,
             @policy, @metadata_json, @previous_key_hash, @previous_key_expires_at_ms)
     ON CONFLICT(id) DO UPDATE SET
       key_hash = excluded.key_hash, key_prefix = excluded.key_prefix, name = excluded.name,
       user_id = excluded.user_id, team_id = excluded.team_id, status = excluded.status,
       expires_at_ms = excluded.expires_at_ms, created_at_ms = excluded.created_at_ms,
       updated_revision = excluded.updated_revision, policy = excluded.policy, metadata_json = excluded.metadata_json,
       previous_key_hash = excluded.previous_key_hash, previous_key_expires_at_ms = excluded.previous_key_expires_at_ms`,
  );
  const del = db.prepare<[string]>(`DELETE FROM keys WHERE id = ?`);
  const count = db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM keys`);
  return {
    all: () => selectAll.all().map(fromRow),
    each: function* () {
      const interner = new KeyInterner();
      const parsed = new Map<string, KeyPolicy>();
      for (const r of selectAll.iterate()) {
        let policy = parsed.get(r.policy);
        if (policy === undefined) {
          policy = parsePolicy(r.policy);
          parsed.set(r.policy, policy);
        }
        yield interner.key({ ...fromRowWithoutPolicy(r), policy });
      }
    },
    get: (id) => {
      const r = selectOne.get(id);
      return r ? fromRow(r) : undefined;
    },
    upsert: (k, revision) => {
      upsert.run({
        id: k.id,
        key_hash: k.keyHash,
        key_prefix: k.prefix,
        name: k.name,
        user_id: k.userId,
        team_id: k.teamId,
        status: k.status,
        expires_at_ms: k.expiresAtMs,
        created_at_ms: k.createdAtMs,
        updated_revision: revision,
        policy: policyText(k.policy),
        metadata_json: k.metadataJson,
        previous_key_hash: k.previousKeyHash,
        previous_key_expires_at_ms: k.previousKeyExpiresAtMs,
      });
    },
    delete: (id) => del.run(id).changes > 0,
    count: () => count.get()?.n ?? 0,
  };
}
