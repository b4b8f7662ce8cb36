import type { AppContext } from "../context.js";

/** Forgets a revoked gateway token and closes its streams on this replica. */
export function closeTokenStreams(app: AppContext, tokenId: string): void {
  app.tokenCache.invalidateToken(tokenId);
  for (const controller of app.streamsByToken.get(tokenId) ?? []) controller.abort(new Error("gateway token revoked"));
}
