import { clientAddress, compileTrustedProxies, unparseableForwardedBucket } from "@tollgate/shared";
import type { Middleware } from "koa";

/**
 * Sets `ctx.ip`, which brute-force blocking, sign-in audit rows and session
 * records read, to the client's address: the socket's peer, or, when that
 * peer is one of TRUSTED_PROXIES, the address X-Forwarded-For names, read
 * from the right and skipping trusted hops, as the gateway does. Without
 * trusted proxies the header is never believed, so a client cannot pick its
 * own brute-force bucket; behind a proxy that is not trusted, every client
 * shares the proxy's address (and one client's bad keys block all of them).
 */
export function clientIp(trustedProxies: readonly string[]): Middleware {
  const trusted = compileTrustedProxies(trustedProxies);
  return (ctx, next) => {
    const peer = ctx.req.socket.remoteAddress;
    const forwardedFor = ctx.req.headers["x-forwarded-for"];
    ctx.request.ip = clientAddress(peer, forwardedFor, trusted) ?? unparseableForwardedBucket(peer, forwardedFor);
    return next();
  };
}
