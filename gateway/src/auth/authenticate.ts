import {
  API_KEY_PREFIX,
  EPHEMERAL_TOKEN_PREFIX,
  KeyStatus,
  checkApiKeyFormat,
  verifyEphemeralToken,
  type EphemeralClaims,
} from "@tollgate/shared";
import type { IncomingHttpHeaders } from "node:http";
import { EMPTY_POLICY } from "./stored-key.js";
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
  | {
      ok: true;
      key: KeyRecord;
      ephemeral: EphemeralUse | null;
      /**
       * The first instant (ms) a check by the clock refuses this credential (the key's expiry,
       * its previous secret's grace, the token's expiry); Infinity when none can.
       */
      validUntilMs: number;
    }
  | { ok: false; reason: AuthFailureReason; message: string; key: KeyRecord | undefined; keyId: string | null };

const ASK_ADMIN = "Ask your Tollgate administrator for a valid key.";
const NEW_TOKEN = "Ask for a new ephemeral token.";

function fail(reason: AuthFailureReason, message: string, key?: KeyRecord, keyId?: string): AuthResult {
  return { ok: false, reason, message, key, keyId: key?.id ?? keyId ?? null };
}

/**
 * Headers a client may carry its key in, by precedence: OpenAI clients send
 * `Authorization: Bearer`, Anthropic clients `x-api-key`, Azure OpenAI
 * clients `api-key`.
 */
export const CREDENTIAL_HEADERS = ["authorization", "x-api-key", "api-key"] as const;
export type CredentialHeader = (typeof CREDENTIAL_HEADERS)[number];

/** The credential a request presents, and where it came from. */
export interface PresentedCredential {
  /** The header that carried it; null when none did. */
  header: CredentialHeader | null;
  /** undefined: no credential; null: an Authorization header that is not a bearer token. */
  token: string | undefined | null;
  /** Lower-precedence credential headers that were also sent and are ignored. */
  ignored: CredentialHeader[];
}

/** A header's value, or undefined when absent or blank. Repeated headers are joined, so they never pass as one key. */
function headerValue(v: string | string[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  const s = (typeof v === "string" ? v : v.join(", ")).trim();
  return s === "" ? undefined : s;
}

/**
 * The credential of a request: the first of `Authorization: Bearer`,
 * `x-api-key` and `api-key` that holds one (a blank header, or a bearer
 * scheme with no token, holds none). When several do, the first wins and the
 * others are ignored, even if the first is wrong and another right: which
 * header counts never depends on which key is valid.
 */
export function presentedCredential(headers: IncomingHttpHeaders): PresentedCredential {
  let found: PresentedCredential | undefined;
  for (const header of CREDENTIAL_HEADERS) {
    const raw = headerValue(headers[header]);
    if (raw === undefined) continue;
    const token = header === "authorization" ? bearerToken(raw) : raw;
    if (token === undefined) continue;
    if (found) found.ignored.push(header);
    else found = { header, token, ignored: [] };
  }
  return found ?? { header: null, token: undefined, ignored: [] };
}

/**
 * Extracts the bearer token; undefined when the header is absent, empty, or
 * "Bearer" without a token (Node trims "Bearer " to that); null when something
 * else was sent. Parsed by hand: a regular expression here backtracked
 * quadratically on a header of many spaces.
 */
export function bearerToken(header: string | undefined): string | undefined | null {
  if (header === undefined || header.trim() === "") return undefined;
  if (header.length < 6 || header.slice(0, 6).toLowerCase() !== "bearer") return null;
  const rest = header.slice(6);
  const token = rest.trim();
  if (token === "") return undefined;
  // The scheme must be followed by a space or tab, and the token be one word.
  if ((rest[0] !== " " && rest[0] !== "\t") || /\s/.test(token)) return null;
  return token;
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
        return fail(
          "ephemeral_expired",
          `This ephemeral token expired${at}. ${NEW_TOKEN}`,
          index.getById(keyId ?? ""),
          keyId,
        );
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
    const state =
      problem.reason === "inactive" ? "is inactive" : problem.reason === "revoked" ? "was revoked" : "has expired";
    return fail(
      "ephemeral_parent_inactive",
      `This ephemeral token's API key ${state}, so the token stopped working. ${ASK_ADMIN}`,
      parent,
    );
  }
  return {
    ok: true,
    key: parent,
    ephemeral: { tokenId: typeof claims.jti === "string" ? claims.jti : "", expiresAtMs: claims.exp * 1000 },
    validUntilMs: Math.min(claims.exp * 1000, parent.expiresAtMs ?? Number.POSITIVE_INFINITY),
  };
}

/**
 * Authenticates an `Authorization` header against the in-memory index; see
 * authenticateCredential.
 */
export function authenticate(header: string | undefined, index: KeyIndex, nowMs: number): AuthResult {
  const token = bearerToken(header);
  return authenticateCredential(
    { header: token === undefined ? null : "authorization", token, ignored: [] },
    index,
    nowMs,
  );
}

/** Authenticates the credential of a request's headers (presentedCredential). */
export function authenticateHeaders(headers: IncomingHttpHeaders, index: KeyIndex, nowMs: number): AuthResult {
  return authenticateCredential(presentedCredential(headers), index, nowMs);
}

const HOW_TO_SEND = `Send it as 'Authorization: Bearer ${API_KEY_PREFIX}...' (or in an 'x-api-key' or 'api-key' header).`;

/**
 * Authenticates a presented credential against the in-memory index: an API
 * key (shape and checksum checked before any lookup) or an ephemeral token
 * (`llmpe_...`), whichever header carried it. Expiry and a rotation's grace
 * period are checked against the clock now, so both end without waiting for
 * a sync.
 */
export function authenticateCredential(credential: PresentedCredential, index: KeyIndex, nowMs: number): AuthResult {
  const result = checkCredential(credential, index, nowMs);
  if (!result.ok && credential.ignored.length > 0 && credential.header !== null) {
    // Say why a right key in another header did not help.
    result.message += ` (Read from the '${credential.header}' header, which takes precedence: ${credential.ignored.map((h) => `'${h}'`).join(" and ")} ${credential.ignored.length === 1 ? "was" : "were"} ignored.)`;
  }
  return result;
}

function checkCredential({ header, token }: PresentedCredential, index: KeyIndex, nowMs: number): AuthResult {
  if (token === null) {
    return fail(
      "malformed",
      `Malformed Authorization header. Send your API key as 'Authorization: Bearer ${API_KEY_PREFIX}...'.`,
    );
  }
  if (token !== undefined && token.startsWith(EPHEMERAL_TOKEN_PREFIX))
    return authenticateEphemeral(token, index, nowMs);
  const problem = checkApiKeyFormat(token);
  if (problem === "missing") {
    return fail("missing", `Missing API key. ${HOW_TO_SEND}`);
  }
  const where = header === null || header === "authorization" ? "" : ` in the '${header}' header`;
  if (problem === "malformed") {
    return fail(
      "malformed",
      `Malformed API key${where}: a Tollgate key starts with '${API_KEY_PREFIX}' followed by 38 letters and digits. Check that you copied the whole key.`,
    );
  }
  if (problem === "bad_checksum") {
    return fail(
      "bad_checksum",
      `Invalid API key${where}: its checksum does not match, so it was mistyped or truncated. Check that you copied the whole key.`,
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
  return {
    ok: true,
    key,
    ephemeral: null,
    validUntilMs: Math.min(entry.graceUntilMs ?? Number.POSITIVE_INFINITY, key.expiresAtMs ?? Number.POSITIVE_INFINITY),
  };
}

/**
 * A key record that no client presented: what handlers get when no key was
 * checked (DISABLE_AUTH, AUTH_BYPASS_PATHS). Active, no scopes, no metadata.
 */
function syntheticKey(id: string, name: string): KeyRecord {
  return Object.freeze({
    id,
    prefix: "",
    name,
    userId: "",
    teamId: "",
    status: KeyStatus.ACTIVE,
    expiresAtMs: null,
    policy: EMPTY_POLICY,
    allowedProviders: null,
    allowedModels: null,
    ipAllowlist: null,
    metadata: null,
    metadataJson: null,
  });
}

/** The key id of requests served while DISABLE_AUTH=true. */
export const DEV_NO_AUTH_KEY_ID = "dev-no-auth";
export const DEV_NO_AUTH_KEY: KeyRecord = syntheticKey(DEV_NO_AUTH_KEY_ID, "DISABLE_AUTH=true");
/** Stands in for a key on an AUTH_BYPASS_PATHS path; the request log records no key id. */
export const PUBLIC_PATH_KEY: KeyRecord = syntheticKey("public", "AUTH_BYPASS_PATHS");
