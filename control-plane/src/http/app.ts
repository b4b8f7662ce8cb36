import { AppError } from "@tollgate/shared";
import Koa from "koa";
import type { AppContext } from "../context.js";
import { authRoutes, ssoOffGate } from "../routes/auth.js";
import { buildRouters } from "../routes/index.js";
import { resolveOrganization } from "../routes/orgs.js";
import { errorHandler, requestContext, requireMasterKey } from "./middleware.js";
import { withSessions } from "./session-auth.js";

export const MAX_URL_LENGTH = 8192;

export function createHttpApp(app: AppContext): Koa {
  const koa = new Koa({ proxy: false });
  koa.silent = true;
  koa.use(requestContext(app));
  koa.use(errorHandler(app));
  koa.use((ctx, next) => {
    if (ctx.url.length > MAX_URL_LENGTH) {
      throw new AppError("uri_too_long", `the URL is longer than ${MAX_URL_LENGTH} characters`);
    }
    return next();
  });
  // Before routing, so an unknown /internal path without the key is a 401, not a 404.
  const masterKey = withSessions(app, requireMasterKey(app));
  const organization = resolveOrganization(app);
  koa.use((ctx, next) =>
    ctx.path === "/internal" || ctx.path.startsWith("/internal/") ? masterKey(ctx, () => organization(ctx, next)) : next(),
  );
  // SSO pages are public: they authenticate through the identity provider.
  koa.use(ssoOffGate(app));
  const sso = authRoutes(app);
  koa.use(sso.routes());
  koa.use(sso.allowedMethods({ throw: true }));
  for (const router of buildRouters(app)) {
    koa.use(router.routes());
    koa.use(router.allowedMethods({ throw: true }));
  }
  return koa;
}
