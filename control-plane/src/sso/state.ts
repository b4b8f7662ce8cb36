import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * The OAuth `state` of an SSO sign-in: the id of its server-side login row and an
 * expiry, HMAC-signed so a forged or altered state is refused before any lookup.
 * The row itself makes it single-use (see repositories/sso-logins.ts).
 */
export interface SsoStatePayload {
  /** The sso_logins row id. */
  id: string;
  /** Expiry, in Unix milliseconds. */
  exp: number;
}

export type StateProblem = "forged" | "expired";

function mac(key: Buffer, body: string): Buffer {
  return createHmac("sha256", key).update(`tollgate-sso-state.${body}`).digest();
}

export function signState(payload: SsoStatePayload, key: Buffer): string {
  const body = Buffer.from(JSON.stringify({ id: payload.id, exp: payload.exp })).toString("base64url");
  return `${body}.${mac(key, body).toString("base64url")}`;
}

export function verifyState(state: string | undefined, key: Buffer, now: Date): SsoStatePayload | StateProblem {
  if (!state || state.length > 512) return "forged";
  const [body, signature, extra] = state.split(".");
  if (!body || !signature || extra !== undefined) return "forged";
  const expected = mac(key, body);
  const presented = Buffer.from(signature, "base64url");
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return "forged";
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
  } catch {
    return "forged";
  }
  const p = payload as Partial<SsoStatePayload>;
  if (typeof p.id !== "string" || typeof p.exp !== "number") return "forged";
  if (now.getTime() >= p.exp) return "expired";
  return { id: p.id, exp: p.exp };
}

/** The state-signing key, derived from the master key so no extra secret needs managing. */
export function stateKey(masterKey: string): Buffer {
  return createHmac("sha256", masterKey).update("tollgate sso state v1").digest();
}
