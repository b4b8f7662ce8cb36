import type { GatewayTokenCache } from "../auth/gateway-token-cache.js";

const REVOKED = "gateway token revoked";

/**
 * Owns the open sync streams, keyed by the gateway token that opened them, so
 * revoking a token (here, or on another replica through NOTIFY) forgets its
 * cached principal and ends its streams at once, and a stop ends them all.
 */
export class StreamRegistry {
  private readonly byToken = new Map<string, Set<AbortController>>();

  constructor(private readonly tokenCache: GatewayTokenCache) {}

  /**
   * Registers a stream; its signal aborts when the RPC ends, the token is revoked
   * or the control plane stops. Call `close()` when the stream ends.
   */
  open(tokenId: string, rpcSignal: AbortSignal): { signal: AbortSignal; revoked(): boolean; close(): void } {
    const controller = new AbortController();
    const onAbort = () => controller.abort(rpcSignal.reason);
    rpcSignal.addEventListener("abort", onAbort, { once: true });
    let streams = this.byToken.get(tokenId);
    if (!streams) this.byToken.set(tokenId, (streams = new Set()));
    streams.add(controller);
    return {
      signal: controller.signal,
      revoked: () =>
        streams.has(controller) &&
        controller.signal.reason instanceof Error &&
        controller.signal.reason.message === REVOKED,
      close: () => {
        rpcSignal.removeEventListener("abort", onAbort);
        streams.delete(controller);
        if (streams.size === 0) this.byToken.delete(tokenId);
      },
    };
  }

  /** Forgets a revoked gateway token and closes its streams on this replica. */
  revokeToken(tokenId: string): void {
    this.tokenCache.invalidateToken(tokenId);
    for (const controller of this.byToken.get(tokenId) ?? []) controller.abort(new Error(REVOKED));
  }

  /** Ends every open stream (the control plane is stopping). */
  closeAll(reason: string): void {
    for (const set of this.byToken.values()) for (const c of set) c.abort(new Error(reason));
  }
}
