import type Router from "@koa/router";
import type { AppContext } from "../context.js";
import { apiKeyRoutes } from "./api-keys.js";
import { auditLogRoutes } from "./audit-logs.js";
import { gatewayRoutes } from "./gateways.js";
import { gatewayTokenRoutes } from "./gateway-tokens.js";
import { healthRoutes } from "./health.js";
import { modelPriceRoutes } from "./model-prices.js";
import { orgRoutes } from "./orgs.js";
import { sessionRoutes } from "./sessions.js";
import { teamRoutes } from "./teams.js";
import { usageRoutes } from "./usage.js";
import { userRoutes } from "./users.js";

/** Every route group of the admin API. */
export function buildRouters(app: AppContext): Router[] {
  return [
    healthRoutes(app),
    orgRoutes(app),
    sessionRoutes(app),
    teamRoutes(app),
    userRoutes(app),
    apiKeyRoutes(app),
    gatewayTokenRoutes(app),
    gatewayRoutes(app),
    modelPriceRoutes(app),
    usageRoutes(app),
    auditLogRoutes(app),
  ];
}
