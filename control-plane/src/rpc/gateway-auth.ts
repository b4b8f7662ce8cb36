import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { AppContext } from "../context.js";
import { findActiveTokenByHash } from "../repositories/gateway-tokens.js";
import { bearerToken, hashGatewayToken, type GatewayPrincipal } from "../auth/credentials.js";

/** Remote address of the HTTP/2 peer, set per request by the node adapter. */
export const kRemoteAddress = createContextKey<string | null>(null, { description: "remote address" });

/** Tells the gRPC session guard that this RPC's session carried an accepted token (it then stays open). */
export const kOnAuthenticated = createContextKey<(() => void) | null>(null, { description: "session authenticated" });

/**
 * Counts a sync stream's gateway alive while its HTTP/2 connection answers pings (see
 * StreamLiveness); returns what to call when the stream ends.
 */
export const kTrackLiveness = createContextKey<((gatewayId: string, orgId: string) => (() => void) | undefined) | null>(
  null,
  {
    description: "stream liveness",
  },
);

/** Resolves the gateway token in `authorization: Bearer …` to its organization. */
export async function authenticateGateway(app: AppContext, ctx: HandlerContext): Promise<GatewayPrincipal> {
  const token = bearerToken(ctx.requestHeader.get("authorization") ?? undefined);
  if (!token) {
    app.metrics.syncAuthFailure();
    throw new ConnectError("missing gateway token: send 'authorization: Bearer <GATEWAY_TOKEN>'", Code.Unauthenticated);
  }
  const hash = hashGatewayToken(token);
  const cached = app.tokenCache.get(hash.toString("hex"));
  if (cached) {
    ctx.values.get(kOnAuthenticated)?.();
    return cached;
  }
  const found = await findActiveTokenByHash(app.db, hash);
  if (!found) {
    app.metrics.syncAuthFailure();
    throw new ConnectError(
      "gateway token is unknown or revoked: create one with POST /internal/gateway-tokens",
      Code.Unauthenticated,
    );
  }
  const principal = { tokenId: found.id, orgId: found.orgId };
  app.tokenCache.set(hash.toString("hex"), principal);
  ctx.values.get(kOnAuthenticated)?.();
  return principal;
}
