import type { GatewayPrincipal } from "./credentials.js";

/**
 * Remembers which gateway token hash maps to which organization for a few
 * seconds, so a fleet's acknowledgements do not each cost a token query.
 * Revocation drops the entry at once on this replica, and on the others
 * through NOTIFY; the TTL bounds anything missed.
 */
export class GatewayTokenCache {
  private readonly byHash = new Map<string, { principal: GatewayPrincipal; expiresAt: number }>();

  constructor(
    private readonly ttlMs = 10_000,
    private readonly maxEntries = 10_000,
  ) {}

  get(hashHex: string): GatewayPrincipal | undefined {
    const hit = this.byHash.get(hashHex);
    if (!hit) return undefined;
    if (hit.expiresAt <= Date.now()) {
      this.byHash.delete(hashHex);
      return undefined;
    }
    return hit.principal;
  }

  set(hashHex: string, principal: GatewayPrincipal): void {
    if (this.byHash.size >= this.maxEntries) this.byHash.clear();
    this.byHash.set(hashHex, { principal, expiresAt: Date.now() + this.ttlMs });
  }

  invalidateToken(tokenId: string): void {
    for (const [hash, hit] of this.byHash) if (hit.principal.tokenId === tokenId) this.byHash.delete(hash);
  }
}
