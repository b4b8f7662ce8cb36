import { createHmac, hash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Session ids the gateway shows its clients. An upstream's `Mcp-Session-Id`
 * is wrapped with a MAC keyed by the SHA-256 of the caller's credential, over
 * the server name and the upstream id: any gateway of the fleet can check it
 * (every one sees the same credential), so a session moves between gateways
 * without shared state, and a session id used with another key is refused
 * before anything reaches the upstream.
 */
const VERSION = "tg1";
const MAC_BYTES = 16;

/** The MAC key for one presented credential; computed once per request. */
export function sessionKeyOf(credential: string): Buffer {
  return hash("sha256", credential, "buffer");
}

function mac(sessionKey: Buffer, scope: string, inner: string): Buffer {
  return createHmac("sha256", sessionKey).update(scope).update("\n").update(inner).digest().subarray(0, MAC_BYTES);
}

/** `scope` is the server name, or "*" for the aggregated endpoint. */
export function wrapSessionId(sessionKey: Buffer, scope: string, inner: string): string {
  return `${VERSION}.${mac(sessionKey, scope, inner).toString("base64url")}.${inner}`;
}

/** The inner id, or null when the id was not issued for this credential and scope. */
export function unwrapSessionId(sessionKey: Buffer, scope: string, presented: string): string | null {
  if (presented.length > 1024) return null;
  const first = presented.indexOf(".");
  const second = presented.indexOf(".", first + 1);
  if (first === -1 || second === -1 || presented.slice(0, first) !== VERSION) return null;
  const inner = presented.slice(second + 1);
  if (inner.length === 0) return null;
  const given = Buffer.from(presented.slice(first + 1, second), "base64url");
  const want = mac(sessionKey, scope, inner);
  return given.length === want.length && timingSafeEqual(given, want) ? inner : null;
}

/** A fresh inner id for an aggregated session (the gateway, not an upstream, owns it). */
export function newAggregateSessionId(): string {
  return randomBytes(18).toString("base64url");
}
