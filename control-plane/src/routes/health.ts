import { defineRoute, routeGroup } from "../http/route.js";
import { ping } from "../db/database.js";

/** Unauthenticated: liveness, readiness (database reachable) and Prometheus metrics. */
export const healthRoutes = routeGroup("health", [
  defineRoute({
    method: "get",
    path: "/healthz",
    summary: "Liveness",
    handler({ ctx }) {
      ctx.body = { status: "ok" };
    },
  }),
  defineRoute({
    method: "get",
    path: "/readyz",
    summary: "Readiness: the database is reachable (503 when not)",
    async handler({ ctx }, app) {
      try {
        await ping(app.db);
        app.dbHealth.markSuccess();
        ctx.body = { ready: true, database: app.dbKind, database_connected: true };
      } catch (err) {
        app.dbHealth.markFailure(err);
        app.logger.warn({ err }, "readiness check: database unreachable");
        ctx.status = 503;
        ctx.body = {
          ready: false,
          database: app.dbKind,
          database_connected: false,
          seconds_unavailable: Math.round(app.dbHealth.unavailableSince ?? 0),
          error: "database unreachable",
        };
      }
    },
  }),
  defineRoute({
    method: "get",
    path: "/metrics",
    summary: "Prometheus metrics (text exposition format)",
    async handler({ ctx }, app) {
      ctx.type = app.metrics.registry.contentType;
      ctx.body = await app.metrics.registry.metrics();
    },
  }),
]);
