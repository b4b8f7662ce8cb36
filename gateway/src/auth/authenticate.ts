import { API_KEY_PREFIX, KeyStatus, checkApiKeyFormat } from "@tollgate/shared";
import { indexKeyOfApiKey, type KeyIndex, type KeyRecord } from "./key-index.js";

/** Why a request was refused; a bounded metric label. */
export type AuthFailureReason =
  | "missing"
  | "malformed"
  | "bad_checksum"
  | "unknown"
  | "inactive"
  | "revoked"
  | "expired";

export type AuthResult =
  | { ok: true; key: KeyRecord }
  | { ok: false; reason: AuthFailureReason; message: string; key: KeyRecord | undefined };

const ASK_ADMIN = "Ask your Tollgate administrator for a valid key.";

function fail(reason: AuthFailureReason, message: string, key?: KeyRecord): AuthResult {
  return { ok: false, reason, message, key };
}

/** Extracts the bearer token; undefined when the header is absent or empty. */
export function bearerToken(header: string | undefined): string | undefined | null {
  if (header === undefined || header.trim() === "") return undefined;
  const m = /^Bearer[ \t]+(\S*)\s*$/i.exec(header);
  // null: something was sent, but not as a bearer token.
  return m ? m[1] || undefined : null;
}

/**
 * Authenticates an `Authorization` header against the in-memory index. Checks
 * the key's shape and checksum before any lookup, and its expiry against the
 * clock now, so an expired key is refused without waiting for a sync.
 */
export function authenticate(header: string | undefined, index: KeyIndex, nowMs: number): AuthResult {
  const token = bearerToken(header);
  if (token === null) {
    return fail(
      "malformed",
      `Malformed Authorization header. Send your API key as 'Authorization: Bearer ${API_KEY_PREFIX}...'.`,
    );
  }
  const problem = checkApiKeyFormat(token);
  if (problem === "missing") {
    return fail("missing", `Missing API key. Send it as 'Authorization: Bearer ${API_KEY_PREFIX}...'.`);
  }
  if (problem === "malformed") {
    return fail(
      "malformed",
      `Malformed API key: a Tollgate key starts with '${API_KEY_PREFIX}' followed by 38 letters and digits. Check that you copied the whole key.`,
    );
  }
  if (problem === "bad_checksum") {
    return fail(
      "bad_checksum",
      "Invalid API key: its checksum does not match, so it was mistyped or truncated. Check that you copied the whole key.",
    );
  }
  const key = index.lookup(indexKeyOfApiKey(token!));
  if (!key) {
    return fail("unknown", `Invalid API key: this gateway does not know it. ${ASK_ADMIN}`);
  }
  if (key.status !== KeyStatus.ACTIVE) {
    if (key.status === KeyStatus.REVOKED) {
      return fail("revoked", `This API key (${key.prefix}...) was revoked. ${ASK_ADMIN}`, key);
    }
    if (key.status === KeyStatus.EXPIRED) {
      return fail("expired", `This API key (${key.prefix}...) has expired. ${ASK_ADMIN}`, key);
    }
    return fail("inactive", `This API key (${key.prefix}...) is inactive. Ask your administrator to reactivate it.`, key);
  }
  if (key.expiresAtMs !== null && key.expiresAtMs <= nowMs) {
    return fail(
      "expired",
      `This API key (${key.prefix}...) expired at ${new Date(key.expiresAtMs).toISOString()}. ${ASK_ADMIN}`,
      key,
    );
  }
  return { ok: true, key };
}
