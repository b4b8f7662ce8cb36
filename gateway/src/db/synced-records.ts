import type { KeyObject } from "node:crypto";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import {
  KeyStatus,
  McpAccessMode,
  ed25519PublicKeyFromRaw,
  type KeyUpsert,
  type ModelPrice,
  type SigningKey,
} from "@tollgate/shared";
import { compileKey, type CompiledKey } from "../auth/key-index.js";
import type { KeyPolicy, StoredKey } from "../auth/stored-key.js";
import type { PriceRule } from "../pricing/price-index.js";
import { policyText, type KeyInterner } from "./key-repository.js";
import type { StoredSigningKey } from "./signing-key-repository.js";

/** A change or snapshot the gateway refuses to apply; its old state stays. */
export class ApplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ApplyError";
  }
}

/** A validated key and its compiled index form. */
interface ReadyKey {
  stored: StoredKey;
  compiled: CompiledKey;
}

/** A validated signing key and its KeyObject. */
interface ReadySigningKey {
  stored: StoredSigningKey;
  publicKey: KeyObject;
}

function int64(v: bigint | undefined): number | null {
  return v === undefined ? null : Number(v);
}

function toPolicy(k: KeyUpsert): KeyPolicy {
  return {
    rpmLimit: int64(k.rpmLimit),
    tpmLimit: int64(k.tpmLimit),
    tokensPerDayLimit: int64(k.tokensPerDayLimit),
    maxConcurrentRequests: int64(k.maxConcurrentRequests),
    budgetUsd: k.budgetUsd ?? null,
    // Unspecified (an older control plane): a total budget, as before periods existed.
    budgetPeriod: k.budgetPeriod || 1,
    budgetAlertThresholds: [...k.budgetAlertThresholds],
    ownerLimits: k.ownerLimits.map((l) => ({
      scope: l.scope,
      subjectId: l.subjectId,
      metric: l.metric,
      limit: Number(l.limit),
    })),
    allowedProviders: [...k.allowedProviders],
    allowedModels: [...k.allowedModels],
    ipAllowlist: [...k.ipAllowlist],
    mcp: k.mcp
      ? {
          enabled: k.mcp.enabled,
          accessMode: k.mcp.accessMode,
          servers: [...k.mcp.servers],
          tools: Object.fromEntries(
            Object.keys(k.mcp.tools)
              .sort()
              .map((server) => [server, [...(k.mcp!.tools[server]?.tools ?? [])]]),
          ),
        }
      : null,
  };
}

/** A synced key as the cache stores it; throws ApplyError for a key it cannot hold. */
export function toStoredKey(k: KeyUpsert): StoredKey {
  if (!k.id) throw new ApplyError("key upsert without an id");
  if (k.keyHash.length !== 32) {
    throw new ApplyError(`key ${k.id}: key_hash must be a 32-byte SHA-256, got ${k.keyHash.length} bytes`);
  }
  if (k.previousKeyHash.length !== 0 && k.previousKeyHash.length !== 32) {
    throw new ApplyError(
      `key ${k.id}: previous_key_hash must be a 32-byte SHA-256, got ${k.previousKeyHash.length} bytes`,
    );
  }
  // A grace period needs both halves; one alone means none.
  const grace = k.previousKeyHash.length === 32 && k.previousKeyExpiresAt !== undefined;
  return {
    id: k.id,
    keyHash: Buffer.from(k.keyHash),
    prefix: k.keyPrefix,
    name: k.name,
    userId: k.userId,
    teamId: k.teamId,
    status: k.status,
    expiresAtMs: k.expiresAt ? timestampMs(k.expiresAt) : null,
    createdAtMs: k.createdAt ? timestampMs(k.createdAt) : 0,
    policy: toPolicy(k),
    metadataJson: k.metadataJson,
    previousKeyHash: grace ? Buffer.from(k.previousKeyHash) : null,
    previousKeyExpiresAtMs: grace ? timestampMs(k.previousKeyExpiresAt!) : null,
  };
}

/** Compiles what auth needs now, so a key the index could not use is refused before anything is written. */
export function compile(k: StoredKey): CompiledKey {
  try {
    return compileKey(k);
  } catch (err) {
    throw new ApplyError(`key ${k.id}: ${(err as Error).message}`);
  }
}

/** Validates and compiles a synced key; with `interner`, its policy and owner ids are shared with equal ones. */
export function prepareKey(k: KeyUpsert, interner?: KeyInterner): ReadyKey {
  const stored = toStoredKey(k);
  if (interner) interner.key(stored);
  return { stored, compiled: compile(stored) };
}

export function publicKeyOf(id: string, raw: Uint8Array): KeyObject {
  if (raw.length !== 32)
    throw new ApplyError(`signing key ${id}: public_key must be a raw 32-byte Ed25519 key, got ${raw.length} bytes`);
  try {
    return ed25519PublicKeyFromRaw(raw);
  } catch (err) {
    throw new ApplyError(`signing key ${id}: public_key is not a valid Ed25519 key: ${(err as Error).message}`);
  }
}

export function prepareSigningKey(k: SigningKey): ReadySigningKey {
  if (!k.id) throw new ApplyError("signing key without an id");
  const stored: StoredSigningKey = {
    id: k.id,
    publicKey: Buffer.from(k.publicKey),
    createdAtMs: k.createdAt ? timestampMs(k.createdAt) : 0,
  };
  return { stored, publicKey: publicKeyOf(k.id, k.publicKey) };
}

function usdPerMtok(what: string, field: string, v: number): number {
  if (!Number.isFinite(v) || v < 0)
    throw new ApplyError(`model price ${what}: ${field} must be a finite number of 0 or more, got ${v}`);
  return v;
}

/** A synced price as the cache stores it; throws ApplyError for one it cannot use. */
export function toPriceRule(p: ModelPrice): PriceRule {
  if (!p.provider || !p.model) throw new ApplyError("model price without a provider or model");
  const what = `${p.provider}/${p.model}`;
  return {
    provider: p.provider,
    model: p.model,
    inputUsdPerMtok: usdPerMtok(what, "input_usd_per_mtok", p.inputUsdPerMtok),
    outputUsdPerMtok: usdPerMtok(what, "output_usd_per_mtok", p.outputUsdPerMtok),
    cacheReadUsdPerMtok:
      p.cacheReadUsdPerMtok === undefined ? null : usdPerMtok(what, "cache_read_usd_per_mtok", p.cacheReadUsdPerMtok),
    cacheWriteUsdPerMtok:
      p.cacheWriteUsdPerMtok === undefined
        ? null
        : usdPerMtok(what, "cache_write_usd_per_mtok", p.cacheWriteUsdPerMtok),
    source: p.source,
  };
}

/** Audit view of a price. */
export function describePrice(r: PriceRule): Record<string, unknown> {
  return {
    provider: r.provider,
    model: r.model,
    input_usd_per_mtok: r.inputUsdPerMtok,
    output_usd_per_mtok: r.outputUsdPerMtok,
    cache_read_usd_per_mtok: r.cacheReadUsdPerMtok,
    cache_write_usd_per_mtok: r.cacheWriteUsdPerMtok,
    source: r.source,
  };
}

/** Audit view of a key: public fields and scopes, never a hash. */
export function describe(k: StoredKey): Record<string, unknown> {
  const p = k.policy;
  const out: Record<string, unknown> = {
    prefix: k.prefix,
    name: k.name,
    user_id: k.userId,
    team_id: k.teamId || null,
    status: KeyStatus[k.status] ?? k.status,
    expires_at: k.expiresAtMs === null ? null : new Date(k.expiresAtMs).toISOString(),
  };
  if (p.allowedProviders.length > 0) out.allowed_providers = p.allowedProviders;
  if (p.allowedModels.length > 0) out.allowed_models = p.allowedModels;
  if (p.ipAllowlist.length > 0) out.ip_allowlist = p.ipAllowlist;
  if (p.rpmLimit !== null) out.rpm_limit = p.rpmLimit;
  if (p.tpmLimit !== null) out.tpm_limit = p.tpmLimit;
  if (p.tokensPerDayLimit !== null) out.tokens_per_day_limit = p.tokensPerDayLimit;
  if (p.maxConcurrentRequests !== null) out.max_concurrent_requests = p.maxConcurrentRequests;
  if (p.budgetUsd !== null) out.budget_usd = p.budgetUsd;
  if (p.mcp !== null) out.mcp_access_mode = McpAccessMode[p.mcp.accessMode] ?? p.mcp.accessMode;
  if (k.previousKeyExpiresAtMs !== null) out.previous_key_expires_at = new Date(k.previousKeyExpiresAtMs).toISOString();
  return out;
}

function sameBuffer(a: Buffer | null, b: Buffer | null): boolean {
  return a === null || b === null ? a === b : a.equals(b);
}

export function changedFields(a: StoredKey, b: StoredKey): string[] {
  const out: string[] = [];
  if (!a.keyHash.equals(b.keyHash)) out.push("key_hash");
  if (a.prefix !== b.prefix) out.push("key_prefix");
  if (a.name !== b.name) out.push("name");
  if (a.userId !== b.userId) out.push("user_id");
  if (a.teamId !== b.teamId) out.push("team_id");
  if (a.status !== b.status) out.push("status");
  if (a.expiresAtMs !== b.expiresAtMs) out.push("expires_at");
  if (a.createdAtMs !== b.createdAtMs) out.push("created_at");
  if (a.policy !== b.policy && policyText(a.policy) !== policyText(b.policy)) out.push("policy");
  if (a.metadataJson !== b.metadataJson) out.push("metadata");
  if (!sameBuffer(a.previousKeyHash, b.previousKeyHash) || a.previousKeyExpiresAtMs !== b.previousKeyExpiresAtMs) {
    out.push("previous_key");
  }
  return out;
}
