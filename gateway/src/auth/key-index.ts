import { hash, type KeyObject } from "node:crypto";
import type { BlockList } from "node:net";
import type { KeyPolicy, StoredKey } from "./stored-key.js";
import { compileIpRules, parseIpRule, type IpRule } from "@tollgate/shared";
import { compileModelMatcher, type ModelMatcher } from "./model-matcher.js";

/**
 * What the hot path needs to know about a key, compiled once when the key is
 * applied (or loaded at boot): sets, compiled globs and a BlockList, so a request
 * never parses or compiles anything. Never the secret or its hash.
 */
export interface KeyRecord
  extends Pick<StoredKey, "id" | "prefix" | "name" | "userId" | "teamId" | "status" | "expiresAtMs"> {
  /** The policy as synced (lists for messages, limits for quotas). */
  policy: Readonly<KeyPolicy>;
  /** Null: any provider. */
  allowedProviders: ReadonlySet<string> | null;
  /** Null: any model. */
  allowedModels: ModelMatcher | null;
  /** Null: any address. */
  ipAllowlist: BlockList | null;
  /** The admin's metadata object, parsed (each read parses again: read the JSON on a hot path); null when none. */
  metadata: Readonly<Record<string, unknown>> | null;
  /** The same, as compact JSON for the request log; null when none. */
  metadataJson: string | null;
}

/** A key ready for the index: its record and the hashes it answers to. */
export interface CompiledKey {
  record: KeyRecord;
  /** Index key of the current secret's hash. */
  hash: string;
  /** Index key of the previous secret's hash during a rotation grace period, else null. */
  previousHash: string | null;
  /** When the previous secret stops working (epoch ms); null with previousHash. */
  previousExpiresAtMs: number | null;
}

/** One entry of the hash map: the current secret (graceUntilMs null) or a previous one. */
export interface IndexEntry {
  key: KeyRecord;
  /** For a previous secret: it works while now < graceUntilMs. */
  graceUntilMs: number | null;
}

/**
 * Map key for a SHA-256 digest. A latin1 string keeps one char per byte (32
 * chars), cheaper to produce and hash than base64 or hex.
 */
export function hashToIndexKey(hash: Uint8Array): string {
  return Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString("latin1");
}

/** Index key of a presented API key. */
export function indexKeyOfApiKey(apiKey: string): string {
  // "binary" is Node's name for latin1. crypto.hash skips the Hash object (bench/README.md, `pnpm bench:lookup`).
  return hash("sha256", apiKey, "binary");
}

function compileIpAllowlist(entries: readonly string[]): BlockList | null {
  if (entries.length === 0) return null;
  const rules: IpRule[] = [];
  for (const e of entries) {
    const rule = parseIpRule(e);
    if (!rule) throw new Error(`ip_allowlist entry ${JSON.stringify(e)} is not an IP address or CIDR`);
    rules.push(rule);
  }
  return compileIpRules(rules);
}

/** Validates metadata_json; its compact form, or null when there is none (empty object included). */
function compactMetadata(text: string): string | null {
  if (text === "") return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error("metadata_json is not valid JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new Error("metadata_json is not a JSON object");
  return Object.keys(value).length === 0 ? null : JSON.stringify(value);
}

/** What a policy compiles to; shared by every key that carries the same policy object. */
interface CompiledScopes {
  readonly policy: Readonly<KeyPolicy>;
  readonly allowedProviders: ReadonlySet<string> | null;
  readonly allowedModels: ModelMatcher | null;
  readonly ipAllowlist: BlockList | null;
}

// Policies are interned per load and snapshot (KeyInterner), so most keys share one policy
// object and, through this map, one set of compiled scopes instead of three fields each.
const scopesByPolicy = new WeakMap<Readonly<KeyPolicy>, CompiledScopes>();

function compileScopes(policy: Readonly<KeyPolicy>): CompiledScopes {
  let scopes = scopesByPolicy.get(policy);
  if (scopes === undefined) {
    scopes = {
      policy,
      allowedProviders: policy.allowedProviders.length === 0 ? null : new Set(policy.allowedProviders),
      allowedModels: compileModelMatcher(policy.allowedModels),
      ipAllowlist: compileIpAllowlist(policy.ipAllowlist),
    };
    scopesByPolicy.set(policy, scopes);
  }
  return scopes;
}

/**
 * The index's KeyRecord. One per cached key, so its size counts (1,000,000 keys in 500 MB,
 * bench/README.md "memory per cached key"): the compiled scopes are one shared object, read
 * through getters, and the metadata is kept as its JSON text alone (the request log echoes
 * the text; the parsed object is rarely read, so it is parsed on demand).
 */
class IndexedKey implements KeyRecord {
  constructor(
    readonly id: string,
    readonly prefix: string,
    readonly name: string,
    readonly userId: string,
    readonly teamId: string,
    readonly status: number,
    readonly expiresAtMs: number | null,
    readonly metadataJson: string | null,
    private readonly scopes: CompiledScopes,
  ) {}

  get policy(): Readonly<KeyPolicy> {
    return this.scopes.policy;
  }

  get allowedProviders(): ReadonlySet<string> | null {
    return this.scopes.allowedProviders;
  }

  get allowedModels(): ModelMatcher | null {
    return this.scopes.allowedModels;
  }

  get ipAllowlist(): BlockList | null {
    return this.scopes.ipAllowlist;
  }

  get metadata(): Readonly<Record<string, unknown>> | null {
    return this.metadataJson === null ? null : (JSON.parse(this.metadataJson) as Record<string, unknown>);
  }
}

/**
 * Compiles a stored key for the index. Throws (naming the field) when a scope
 * cannot be compiled; the sync apply path turns that into an ApplyError
 * before anything is written.
 */
export function compileKey(k: StoredKey): CompiledKey {
  const record = new IndexedKey(
    k.id,
    k.prefix,
    k.name,
    k.userId,
    k.teamId,
    k.status,
    k.expiresAtMs,
    compactMetadata(k.metadataJson),
    compileScopes(k.policy),
  );
  const grace = k.previousKeyHash !== null && k.previousKeyExpiresAtMs !== null;
  return {
    record,
    hash: hashToIndexKey(k.keyHash),
    previousHash: grace ? hashToIndexKey(k.previousKeyHash!) : null,
    previousExpiresAtMs: grace ? k.previousKeyExpiresAtMs : null,
  };
}

/** The full content of the index, swapped in at once. */
export interface IndexContent {
  keys: Iterable<CompiledKey>;
  /** Signing key id → Ed25519 public key. */
  signingKeys?: Iterable<[string, KeyObject]>;
  /** Organization of the snapshot; "" before any. */
  orgId?: string;
}

/**
 * In-memory copy of the key cache: hash → entry for auth (a key's current
 * secret, and its previous one during a rotation grace period), id → hashes
 * for deletes, the organization's signing keys and its id. Only the sync apply
 * path writes it, after SQLite has committed.
 */
export class KeyIndex {
  // Memory per key matters (1,000,000 keys in well under 500 MB, bench/README.md): a current
  // secret maps straight to its record, only a previous secret to a GraceEntry; a key without a
  // previous secret maps its id to its hash string alone.
  private byHash = new Map<string, KeyRecord | GraceEntry>();
  private hashesById = new Map<string, string | KeyHashes>();
  private signing = new Map<string, KeyObject>();
  private org = "";
  private changes = 0;

  /**
   * Bumped by every change to the index (a snapshot, a key upserted or deleted, a signing key):
   * a credential checked at one version is checked again at any other (CredentialMemo).
   */
  get version(): number {
    return this.changes;
  }

  /** Number of keys (not of secrets: a key in its grace period counts once). */
  get size(): number {
    return this.hashesById.size;
  }

  /** The organization the cached keys belong to; "" before any snapshot. */
  get orgId(): string {
    return this.org;
  }

  get signingKeyCount(): number {
    return this.signing.size;
  }

  /** The raw entry for a hash, whether or not a previous secret's grace has run out. */
  find(indexKey: string): IndexEntry | undefined {
    const e = this.byHash.get(indexKey);
    if (e === undefined || e instanceof GraceEntry) return e;
    return { key: e, graceUntilMs: null };
  }

  /**
   * The key a secret's hash authenticates as now: its current secret, or its
   * previous one while `nowMs` is before the end of the grace period (without
   * `nowMs`, current secrets only).
   */
  lookup(indexKey: string, nowMs?: number): KeyRecord | undefined {
    const e = this.byHash.get(indexKey);
    if (e === undefined || !(e instanceof GraceEntry)) return e;
    return nowMs !== undefined && nowMs < e.graceUntilMs ? e.key : undefined;
  }

  getById(id: string): KeyRecord | undefined {
    const h = this.hashesById.get(id);
    return h === undefined ? undefined : recordOf(this.byHash.get(typeof h === "string" ? h : h.hash));
  }

  publicKeyFor(kid: string): KeyObject | undefined {
    return this.signing.get(kid);
  }

  /** Swaps in a whole new content at once; readers never see a half-built index. */
  replaceAll(content: IndexContent): void {
    this.changes++;
    const byHash = new Map<string, KeyRecord | GraceEntry>();
    const hashesById = new Map<string, string | KeyHashes>();
    // One pass over the keys, which may be a generator (the boot load streams them from SQLite
    // so no array of a million compiled keys exists); only keys in a grace period are kept.
    const graced: CompiledKey[] = [];
    for (const k of content.keys) {
      byHash.set(k.hash, k.record);
      hashesById.set(k.record.id, k.hash);
      if (k.previousHash !== null) graced.push(k);
    }
    // Previous secrets second: a current secret always wins its hash.
    for (const k of graced) {
      const previousHash = k.previousHash!;
      if (byHash.has(previousHash)) continue;
      byHash.set(previousHash, new GraceEntry(k.record, k.previousExpiresAtMs!));
      hashesById.set(k.record.id, { hash: k.hash, previousHash });
    }
    this.byHash = byHash;
    this.hashesById = hashesById;
    this.signing = new Map(content.signingKeys ?? []);
    this.org = content.orgId ?? "";
  }

  upsert(k: CompiledKey): void {
    this.changes++;
    this.delete(k.record.id);
    this.byHash.set(k.hash, k.record);
    let previousHash: string | null = null;
    if (k.previousHash !== null && k.previousHash !== k.hash) {
      const taken = this.byHash.get(k.previousHash);
      if (taken === undefined || taken instanceof GraceEntry) {
        this.byHash.set(k.previousHash, new GraceEntry(k.record, k.previousExpiresAtMs!));
        previousHash = k.previousHash;
      }
    }
    this.hashesById.set(k.record.id, previousHash === null ? k.hash : { hash: k.hash, previousHash });
  }

  delete(id: string): boolean {
    this.changes++;
    const h = this.hashesById.get(id);
    if (h === undefined) return false;
    this.hashesById.delete(id);
    for (const hash of typeof h === "string" ? [h] : [h.hash, h.previousHash]) {
      // Only what is still this key's: a hash may have moved to another key since.
      if (recordOf(this.byHash.get(hash))?.id === id) this.byHash.delete(hash);
    }
    return true;
  }

  upsertSigningKey(id: string, publicKey: KeyObject): void {
    this.changes++;
    this.signing.set(id, publicKey);
  }
}

/** A previous secret's entry during a rotation grace period. */
class GraceEntry implements IndexEntry {
  constructor(
    readonly key: KeyRecord,
    readonly graceUntilMs: number,
  ) {}
}

/** A key's hashes when it has a previous secret. */
interface KeyHashes {
  hash: string;
  previousHash: string;
}

function recordOf(e: KeyRecord | GraceEntry | undefined): KeyRecord | undefined {
  return e === undefined || !(e instanceof GraceEntry) ? e : e.key;
}
