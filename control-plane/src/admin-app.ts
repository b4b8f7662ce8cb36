import { AppError } from "@tollgate/shared";
import Koa from "koa";
import type { AppContext } from "./context.js";
import { authRoutes, ssoOffGate } from "./routes/auth.js";
import { adminRouteGroups } from "./routes/index.js";
import { requireAdmin } from "./http/admin-auth.js";
import { errorHandler, requestContext } from "./http/middleware.js";
import { inputGuard } from "./http/input-guard.js";
import { resolveOrganization } from "./http/organization.js";
import { buildRouter } from "./http/route.js";
import { withSessions } from "./http/session-auth.js";
import { sessionRoutes } from "./routes/sessions.js";
import { defaultDashboardRoot, serveDashboard } from "./http/dashboard-static.js";
import { clientIp } from "./http/client-ip.js";

export const MAX_URL_LENGTH = 8192;

/**
 * The admin API's Koa app: the request guards and the admin credential first, then
 * the SSO and session pages, then every route group of the table in routes/index.ts.
 * It stands above http/ (middleware, route building) and routes/ (the handlers) and
 * joins them, so http/ needs nothing from routes/.
 */
export function createHttpApp(app: AppContext): Koa {
  const koa = new Koa({ proxy: false });
  koa.silent = true;
  koa.use(clientIp(app.config.trustedProxies ?? []));
  koa.use(requestContext(app));
  koa.use(errorHandler(app));
  koa.use(inputGuard());
  koa.use((ctx, next) => {
    if (ctx.url.length > MAX_URL_LENGTH) {
      throw new AppError("uri_too_long", `the URL is longer than ${MAX_URL_LENGTH} characters`);
    }
    return next();
  });
  koa.use(serveDashboard({ root: defaultDashboardRoot() }));
  // Before routing, so an unknown /internal path without a credential is a 401, not a 404.
  const admin = withSessions(app, requireAdmin(app));
  const organization = resolveOrganization(app);
  koa.use((ctx, next) =>
    ctx.path === "/internal" || ctx.path.startsWith("/internal/") ? admin(ctx, () => organization(ctx, next)) : next(),
  );
  // SSO pages are public: they authenticate through the identity provider.
  koa.use(ssoOffGate(app));
  const sso = authRoutes(app);
  koa.use(sso.routes());
  koa.use(sso.allowedMethods({ throw: true }));
  const sessions = sessionRoutes(app);
  koa.use(sessions.routes());
  koa.use(sessions.allowedMethods({ throw: true }));
  for (const group of adminRouteGroups) {
    const router = buildRouter(app, group);
    koa.use(router.routes());
    koa.use(router.allowedMethods({ throw: true }));
  }
  return koa;
}
