import Router from "@koa/router";
import type { AppContext } from "../context.js";
import { listGateways } from "../repositories/gateways.js";

export function gatewayRoutes(app: AppContext): Router {
  const router = new Router();
  router.get("/internal/gateways", async (ctx) => {
    ctx.body = { data: await listGateways(app.db, ctx.state.orgId, app.config.gatewayOfflineAfterMs), next_cursor: null };
  });
  return router;
}
