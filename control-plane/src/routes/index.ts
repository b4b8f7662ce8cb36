import type { RouteGroup } from "../http/route.js";
import { adminTokenRoutes } from "./admin-tokens.js";
import { apiKeyRoutes } from "./api-keys/index.js";
import { auditLogRoutes } from "./audit-logs.js";
import { gatewayRoutes } from "./gateways.js";
import { gatewayTokenRoutes } from "./gateway-tokens.js";
import { healthRoutes } from "./health.js";
import { mcpServerRoutes } from "./mcp-servers.js";
import { modelPriceRoutes } from "./model-prices.js";
import { openApiRoutes } from "./openapi.js";
import { orgRoutes } from "./orgs.js";
import { teamRoutes } from "./teams.js";
import { usageRoutes } from "./usage.js";
import { userRoutes } from "./users.js";

/**
 * Every route group of the admin API, in mount order: a table an OpenAPI
 * generator or a route listing can walk (each route keeps its zod schemas).
 */
export const adminRouteGroups: RouteGroup[] = [
  healthRoutes,
  orgRoutes,
  teamRoutes,
  userRoutes,
  apiKeyRoutes,
  gatewayTokenRoutes,
  adminTokenRoutes,
  gatewayRoutes,
  modelPriceRoutes,
  mcpServerRoutes,
  usageRoutes,
  auditLogRoutes,
  openApiRoutes(() => adminRouteGroups),
];
