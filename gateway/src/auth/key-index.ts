import { createHash } from "node:crypto";
import type { StoredKey } from "../db/key-repository.js";

/** What the hot path needs to know about a key. Never the secret or its hash. */
export interface KeyRecord {
  id: string;
  prefix: string;
  name: string;
  userId: string;
  teamId: string;
  /** KeyStatus enum value. */
  status: number;
  expiresAtMs: number | null;
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
  // "binary" is Node's name for latin1.
  return createHash("sha256").update(apiKey).digest("binary");
}

export function toKeyRecord(k: StoredKey): KeyRecord {
  return {
    id: k.id,
    prefix: k.prefix,
    name: k.name,
    userId: k.userId,
    teamId: k.teamId,
    status: k.status,
    expiresAtMs: k.expiresAtMs,
  };
}

/**
 * In-memory copy of the key cache: hash → record for auth, id → hash for
 * deletes. Only the sync apply path writes it, after SQLite has committed.
 */
export class KeyIndex {
  private byHash = new Map<string, KeyRecord>();
  private hashById = new Map<string, string>();

  get size(): number {
    return this.byHash.size;
  }

  lookup(indexKey: string): KeyRecord | undefined {
    return this.byHash.get(indexKey);
  }

  getById(id: string): KeyRecord | undefined {
    const h = this.hashById.get(id);
    return h === undefined ? undefined : this.byHash.get(h);
  }

  /** Swaps in a whole new content at once; readers never see a half-built index. */
  replaceAll(keys: Iterable<StoredKey>): void {
    const byHash = new Map<string, KeyRecord>();
    const hashById = new Map<string, string>();
    for (const k of keys) {
      const h = hashToIndexKey(k.keyHash);
      byHash.set(h, toKeyRecord(k));
      hashById.set(k.id, h);
    }
    this.byHash = byHash;
    this.hashById = hashById;
  }

  upsert(k: StoredKey): void {
    const h = hashToIndexKey(k.keyHash);
    const old = this.hashById.get(k.id);
    if (old !== undefined && old !== h) this.byHash.delete(old);
    this.byHash.set(h, toKeyRecord(k));
    this.hashById.set(k.id, h);
  }

  delete(id: string): boolean {
    const h = this.hashById.get(id);
    if (h === undefined) return false;
    this.hashById.delete(id);
    this.byHash.delete(h);
    return true;
  }
}
