import type { Migration } from "kysely";
import * as initial from "./2026-11-22T20-30-00_initial.js";
import * as keyLifecycle from "./2026-11-22T21-00-00_key-lifecycle.js";
import * as modelPrices from "./2026-11-22T23-00-00_model-prices.js";
import * as quotas from "./2026-11-22T23-10-00_quotas.js";
import * as dashboardSessions from "./2026-12-03T07-30-00_dashboard-sessions.js";
import * as identity from "./2026-12-03T07-45-00_identity.js";
import * as mcpServers from "./2026-12-03T08-00-00_mcp-servers.js";
import * as keysListIndexes from "./2026-12-03T08-30-00_keys-list-indexes.js";
import * as keyNameSearch from "./2026-12-03T14-00-00_key-name-search.js";

/** Every migration, listed explicitly so a bundle carries them; names sort by time. */
export const migrations: Record<string, Migration> = {
  "2026-11-22T20-30-00_initial": initial,
  "2026-11-22T21-00-00_key-lifecycle": keyLifecycle,
  "2026-11-22T23-00-00_model-prices": modelPrices,
  "2026-11-22T23-10-00_quotas": quotas,
  "2026-12-03T07-30-00_dashboard-sessions": dashboardSessions,
  "2026-12-03T07-45-00_identity": identity,
  "2026-12-03T08-00-00_mcp-servers": mcpServers,
  "2026-12-03T08-30-00_keys-list-indexes": keysListIndexes,
  "2026-12-03T14-00-00_key-name-search": keyNameSearch,
};
