import { createPublicKey, randomBytes, sign, verify, type KeyObject } from "node:crypto";

/**
 * Ephemeral tokens: short-lived credentials derived from an API key, verified
 * offline by every gateway. `llmpe_` + base64url(JSON claims) + `.` +
 * base64url(Ed25519 signature over the first two parts). The control plane
 * holds the private key; gateways receive the public half through sync.
 */
export const EPHEMERAL_TOKEN_PREFIX = "llmpe_";

export interface EphemeralClaims {
  /** Signing key id. */
  kid: string;
  /** Parent API key id: the token dies with it. */
  key_id: string;
  org_id: string;
  /** Issued at / expires at, in Unix seconds. */
  iat: number;
  exp: number;
  /** Unique token id, for audit. */
  jti: string;
}

const MAX_TOKEN_LENGTH = 1024;

export function signEphemeralToken(
  claims: Omit<EphemeralClaims, "jti">,
  privateKey: KeyObject,
): { token: string; claims: EphemeralClaims } {
  const full: EphemeralClaims = { ...claims, jti: randomBytes(12).toString("base64url") };
  const body = EPHEMERAL_TOKEN_PREFIX + Buffer.from(JSON.stringify(full)).toString("base64url");
  const signature = sign(null, Buffer.from(body), privateKey).toString("base64url");
  return { token: `${body}.${signature}`, claims: full };
}

export function isEphemeralToken(token: string): boolean {
  return token.startsWith(EPHEMERAL_TOKEN_PREFIX);
}

export type EphemeralProblem = "malformed" | "unknown_signing_key" | "bad_signature" | "expired";

/**
 * Verifies shape, signature and expiry. The caller still checks that the
 * parent key exists and is active, and that the organization matches.
 */
export function verifyEphemeralToken(
  token: string,
  publicKeyFor: (kid: string) => KeyObject | undefined,
  nowSeconds: number,
): { ok: true; claims: EphemeralClaims } | { ok: false; reason: EphemeralProblem } {
  if (token.length > MAX_TOKEN_LENGTH || !token.startsWith(EPHEMERAL_TOKEN_PREFIX))
    return { ok: false, reason: "malformed" };
  const dot = token.lastIndexOf(".");
  if (dot < 0) return { ok: false, reason: "malformed" };
  const body = token.slice(0, dot);
  let claims: EphemeralClaims;
  try {
    claims = JSON.parse(
      Buffer.from(body.slice(EPHEMERAL_TOKEN_PREFIX.length), "base64url").toString("utf8"),
    ) as EphemeralClaims;
  } catch {
    return { ok: false, reason: "malformed" };
  }
  if (
    typeof claims !== "object" ||
    claims === null ||
    typeof claims.kid !== "string" ||
    typeof claims.key_id !== "string" ||
    typeof claims.org_id !== "string" ||
    typeof claims.exp !== "number" ||
    typeof claims.iat !== "number"
  ) {
    return { ok: false, reason: "malformed" };
  }
  const publicKey = publicKeyFor(claims.kid);
  if (!publicKey) return { ok: false, reason: "unknown_signing_key" };
  const signature = Buffer.from(token.slice(dot + 1), "base64url");
  if (!verify(null, Buffer.from(body), publicKey, signature)) return { ok: false, reason: "bad_signature" };
  if (claims.exp <= nowSeconds) return { ok: false, reason: "expired" };
  return { ok: true, claims };
}

/** A KeyObject from a raw 32-byte Ed25519 public key, as synced. */
export function ed25519PublicKeyFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(raw).toString("base64url") },
    format: "jwk",
  });
}

/** The raw 32 bytes of an Ed25519 public key. */
export function ed25519PublicKeyToRaw(key: KeyObject): Buffer {
  const jwk = key.export({ format: "jwk" });
  return Buffer.from(jwk.x!, "base64url");
}
