import {
  API_KEY_PREFIX,
  EPHEMERAL_TOKEN_PREFIX,
  KeyStatus,
  checkApiKeyFormat,
  verifyEphemeralToken,
  type EphemeralClaims,
} from "@tollgate/shared";
import { indexKeyOfApiKey, type KeyIndex, type KeyRecord } from "./key-index.js";

/** Why a request was refused; a bounded metric label. */
export type AuthFailureReason =
  | "missing"
  | "malformed"
  | "bad_checksum"
  | "unknown"
  | "inactive"
  | "revoked"
  | "expired"
  | "rotated"
  | "ephemeral_malformed"
  | "ephemeral_bad_signature"
  | "ephemeral_expired"
  | "ephemeral_unknown_signing_key"
  | "ephemeral_parent_inactive"
  | "ephemeral_wrong_org";

/** An ephemeral token that authenticated: what the logs may keep of it. */
export interface EphemeralUse {
  /** The token's id (`jti`), never the token. */
  tokenId: string;
  expiresAtMs: number;
}

export type AuthResult =
  | { ok: true; key: KeyRecord; ephemeral: EphemeralUse | null }
  | { ok: false; reason: AuthFailureReason; message: string; key: KeyRecord | undefined; keyId: string | null };

const ASK_ADMIN = "Ask your Tollgate administrator for a valid key.";
const NEW_TOKEN = "Ask for a new ephemeral token.";

function fail(reason: AuthFailureReason, message: string, key?: KeyRecord, keyId?: string): AuthResult {
  return { ok: false, reason, message, key, keyId: key?.id ?? keyId ?? null };
}

/** Extracts the bearer token; undefined when the header is absent or empty. */
export function bearerToken(header: string | undefined): string | undefined | null {
  if (header === undefined || header.trim() === "") return undefined;
  const m = /^Bearer[ \t]+(\S*)\s*$/i.exec(header);
  // null: something was sent, but not as a bearer token.
  return m ? m[1] || undefined : null;
}

/** Why a known key may not authenticate now, or null when it may. */
function keyProblem(
  key: KeyRecord,
  nowMs: number,
  label = `This API key (${key.prefix}...)`,
): { reason: "inactive" | "revoked" | "expired"; message: string } | null {
  if (key.status !== KeyStatus.ACTIVE) {
    if (key.status === KeyStatus.REVOKED) return { reason: "revoked", message: `${label} was revoked. ${ASK_ADMIN}` };
    if (key.status === KeyStatus.EXPIRED) return { reason: "expired", message: `${label} has expired. ${ASK_ADMIN}` };
    return { reason: "inactive", message: `${label} is inactive. Ask your administrator to reactivate it.` };
  }
  if (key.expiresAtMs !== null && key.expiresAtMs <= nowMs) {
    return {
      reason: "expired",
      message: `${label} expired at ${new Date(key.expiresAtMs).toISOString()}. ${ASK_ADMIN}`,
    };
  }
  return null;
}

/** The claims of a token whose signature was already verified (only its expiry failed). */
function verifiedClaims(token: string): Partial<EphemeralClaims> {
  try {
    const body = token.slice(EPHEMERAL_TOKEN_PREFIX.length, token.lastIndexOf("."));
    return JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as Partial<EphemeralClaims>;
  } catch {
    return {};
  }
}

/**
 * An ephemeral token: signature by one of the organization's synced signing
 * keys, expiry, organization, then its parent key, which must be usable
 * itself: the token dies with it.
 */
function authenticateEphemeral(token: string, index: KeyIndex, nowMs: number): AuthResult {
  const verified = verifyEphemeralToken(token, (kid) => index.publicKeyFor(kid), nowMs / 1000);
  if (!verified.ok) {
    switch (verified.reason) {
      case "malformed":
        return fail("ephemeral_malformed", "Malformed ephemeral token: check that you copied the whole token.");
      case "unknown_signing_key":
        return fail(
          "ephemeral_unknown_signing_key",
          `Invalid ephemeral token: it was not signed by a key of this gateway's organization. ${NEW_TOKEN}`,
        );
      case "bad_signature":
        return fail("ephemeral_bad_signature", `Invalid ephemeral token: its signature does not match. ${NEW_TOKEN}`);
      case "expired": {
        const claims = verifiedClaims(token);
        const at = typeof claims.exp === "number" ? ` at ${new Date(claims.exp * 1000).toISOString()}` : "";
        const keyId = typeof claims.key_id === "string" ? claims.key_id : undefined;
        return fail("ephemeral_expired", `This ephemeral token expired${at}. ${NEW_TOKEN}`, index.getById(keyId ?? ""), keyId);
      }
    }
  }
  const { claims } = verified;
  if (index.orgId === "" || claims.org_id !== index.orgId) {
    return fail(
      "ephemeral_wrong_org",
      `Invalid ephemeral token: it belongs to another organization than this gateway's. ${NEW_TOKEN}`,
      undefined,
      claims.key_id,
    );
  }
  const parent = index.getById(claims.key_id);
  if (!parent) {
    return fail(
      "ephemeral_parent_inactive",
      `This ephemeral token's API key no longer exists, so the token stopped working. ${ASK_ADMIN}`,
      undefined,
      claims.key_id,
    );
  }
  const problem = keyProblem(parent, nowMs);
  if (problem) {
    // Not the parent's own message: a delegate holding the token need not learn the key's prefix.
    const state = problem.reason === "inactive" ? "is inactive" : problem.reason === "revoked" ? "was revoked" : "has expired";
    return fail("ephemeral_parent_inactive", `This ephemeral token's API key ${state}, so the token stopped working. ${ASK_ADMIN}`, parent);
  }
  return { ok: true, key: parent, ephemeral: { tokenId: typeof claims.jti === "string" ? claims.jti : "", expiresAtMs: claims.exp * 1000 } };
}

/**
 * Authenticates an `Authorization` header against the in-memory index: an
 * API key (shape and checksum checked before any lookup) or an ephemeral
 * token (`llmpe_...`). Expiry and a rotation's grace period are checked
 * against the clock now, so both end without waiting for a sync.
 */
export function authenticate(header: string | undefined, index: KeyIndex, nowMs: number): AuthResult {
  const token = bearerToken(header);
  if (token === null) {
    return fail(
      "malformed",
      `Malformed Authorization header. Send your API key as 'Authorization: Bearer ${API_KEY_PREFIX}...'.`,
    );
  }
  if (token !== undefined && token.startsWith(EPHEMERAL_TOKEN_PREFIX)) return authenticateEphemeral(token, index, nowMs);
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
  const entry = index.find(indexKeyOfApiKey(token!));
  if (!entry) {
    return fail("unknown", `Invalid API key: this gateway does not know it. ${ASK_ADMIN}`);
  }
  const key = entry.key;
  if (entry.graceUntilMs !== null && entry.graceUntilMs <= nowMs) {
    return fail(
      "rotated",
      // No prefix: after a rotation it is the new secret's.
      `This API key was rotated: its previous secret stopped working at ${new Date(entry.graceUntilMs).toISOString()}. Use the new secret.`,
      key,
    );
  }
  const keyIssue = keyProblem(key, nowMs, entry.graceUntilMs === null ? undefined : "This API key");
  if (keyIssue) return fail(keyIssue.reason, keyIssue.message, key);
  return { ok: true, key, ephemeral: null };
}
