import { wholeList } from "../http/pagination.js";
import { defineRoute, routeGroup } from "../http/route.js";
import { gatewaySchema, pageOf } from "./response-schemas.js";
import { listGateways } from "../repositories/gateways.js";

export const gatewayRoutes = routeGroup("gateways", [
  defineRoute({
    method: "get",
    path: "/internal/gateways",
    response: { schema: pageOf(gatewaySchema) },
    async handler({ ctx }, app) {
      ctx.body = wholeList(await listGateways(app.db, ctx.state.orgId, app.config.gatewayOfflineAfterMs));
    },
  }),
]);
