import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { BASE62_ALPHABET, encodeBase62, isBase62, randomBase62 } from "./base62.js";

/**
 * API key format, GitHub-token style: `llmp_` + 32 random base62 characters
 * (about 190 bits) + 6 base62 characters of the body's CRC32. The checksum lets
 * a gateway reject typos and garbage before any lookup, and lets secret
 * scanners recognise a Tollgate key with few false positives.
 */
export const API_KEY_PREFIX = "llmp_";
export const API_KEY_BODY_LENGTH = 32;
export const API_KEY_CHECKSUM_LENGTH = 6;
export const API_KEY_LENGTH = API_KEY_PREFIX.length + API_KEY_BODY_LENGTH + API_KEY_CHECKSUM_LENGTH;
/** Characters of the key shown in lists: the `llmp_` prefix plus 8 body characters. */
export const API_KEY_VISIBLE_LENGTH = API_KEY_PREFIX.length + 8;

function checksum(body: string): string {
  return encodeBase62(crc32(body) >>> 0, API_KEY_CHECKSUM_LENGTH);
}

/** A freshly minted key: the secret (shown once), its hash and its public prefix. */
export interface MintedApiKey {
  key: string;
  hash: Buffer;
  prefix: string;
}

export function generateApiKey(): MintedApiKey {
  const body = randomBase62(API_KEY_BODY_LENGTH);
  const key = API_KEY_PREFIX + body + checksum(body);
  return { key, hash: hashApiKey(key), prefix: apiKeyPrefix(key) };
}

export type ApiKeyFormatProblem = "missing" | "malformed" | "bad_checksum";

/**
 * Checks shape and checksum without any lookup. Returns null when well formed,
 * else the reason (used as a low-cardinality metric label).
 */
export function checkApiKeyFormat(key: string | undefined): ApiKeyFormatProblem | null {
  if (!key) return "missing";
  if (key.length !== API_KEY_LENGTH || !key.startsWith(API_KEY_PREFIX)) return "malformed";
  const body = key.slice(API_KEY_PREFIX.length, API_KEY_PREFIX.length + API_KEY_BODY_LENGTH);
  const sum = key.slice(API_KEY_PREFIX.length + API_KEY_BODY_LENGTH);
  if (!isBase62(body) || !isBase62(sum)) return "malformed";
  return checksum(body) === sum ? null : "bad_checksum";
}

/** SHA-256 of the whole key: the only form in which a key is stored anywhere. */
export function hashApiKey(key: string): Buffer {
  return createHash("sha256").update(key).digest();
}

export function apiKeyPrefix(key: string): string {
  return key.slice(0, API_KEY_VISIBLE_LENGTH);
}

/**
 * A key derived from a secret seed: the same seed always gives the same key.
 * Lets an idempotent rotation replay its answer without storing the secret.
 */
export function apiKeyFromSeed(seed: Buffer): MintedApiKey {
  let body = "";
  for (let counter = 0; body.length < API_KEY_BODY_LENGTH; counter++) {
    const block = createHash("sha256").update(seed).update(String(counter)).digest();
    for (const byte of block) {
      if (byte < 248) body += BASE62_ALPHABET[byte % 62];
      if (body.length === API_KEY_BODY_LENGTH) break;
    }
  }
  const key = API_KEY_PREFIX + body + checksum(body);
  return { key, hash: hashApiKey(key), prefix: apiKeyPrefix(key) };
}
