import type { BruteForceGuard, Logger } from "@tollgate/shared";
import type { ControlPlaneConfig } from "./config.js";
import type { ChangeNotifier } from "./change-notifier.js";
import type { AckWriter } from "./sync/ack-writer.js";
import type { ChangeFeed } from "./sync/change-feed.js";
import type { GatewayTokenCache } from "./sync/token-cache.js";
import type { Db } from "./db/database.js";
import type { Metrics } from "./metrics.js";
import type { AlertDelivery } from "./quota/alerts.js";

/** Everything a route or RPC needs; built once in index.ts, with overrides in tests. */
export interface AppContext {
  config: ControlPlaneConfig;
  db: Db;
  dbKind: "postgres" | "pglite";
  defaultOrgId: string;
  notifier: ChangeNotifier;
  /** Shared change-log reads for the sync streams. */
  changeFeed: ChangeFeed;
  /** Gateway token → organization, briefly cached for acknowledgements. */
  tokenCache: GatewayTokenCache;
  /** Coalesced acknowledgement writes. */
  ackWriter: AckWriter;
  metrics: Metrics;
  logger: Logger;
  /** Open sync streams by gateway token id, so revoking a token closes them at once. */
  streamsByToken: Map<string, Set<AbortController>>;
  now: () => Date;
  /** Blocks client IPs after repeated invalid master keys. */
  bruteForce: BruteForceGuard;
  /** Sends queued budget alerts to the webhook; absent in tests that build a bare context. */
  alertDelivery?: AlertDelivery;
}
