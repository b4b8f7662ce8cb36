import Router from "@koa/router";
import type { AppContext } from "../context.js";
import { ping } from "../db/database.js";

/** Unauthenticated: liveness, readiness (database reachable) and Prometheus metrics. */
export function healthRoutes(app: AppContext): Router {
  const router = new Router();
  router.get("/healthz", (ctx) => {
    ctx.body = { status: "ok" };
  });
  router.get("/readyz", async (ctx) => {
    try {
      await ping(app.db);
      ctx.body = { ready: true, database: app.dbKind };
    } catch (err) {
      app.logger.warn({ err }, "readiness check: database unreachable");
      ctx.status = 503;
      ctx.body = { ready: false, database: app.dbKind, error: "database unreachable" };
    }
  });
  router.get("/metrics", async (ctx) => {
    ctx.type = app.metrics.registry.contentType;
    ctx.body = await app.metrics.registry.metrics();
  });
  return router;
}
