import { createHash, timingSafeEqual } from "node:crypto";

/** Gateway enrollment secrets: `tgw_` + 40 base62 characters, stored as SHA-256. */
export const GATEWAY_TOKEN_PREFIX = "tgw_";

export function hashGatewayToken(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}

/** Who a gateway token speaks for: the token itself (for revocation) and its organization. */
export interface GatewayPrincipal {
  tokenId: string;
  orgId: string;
}

/** Compares secrets through their SHA-256 so the comparison takes constant time whatever the length. */
export function secretEquals(presented: string, expected: string): boolean {
  const a = createHash("sha256").update(presented).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The credential of an `Authorization: Bearer …` header, shared by the admin API and the RPCs. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}
