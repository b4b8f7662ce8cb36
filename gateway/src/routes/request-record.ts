import type { IncomingMessage, ServerResponse } from "node:http";
import type { AppContext } from "../context.js";
import type { KeyRecord } from "../auth/key-index.js";
import type { RouteLabel } from "../metrics.js";
import type { UpstreamAttempt } from "../db/request-log-repository.js";
import type { Usage } from "../providers/usage.js";

/** What the request log and metrics learn about one request as it runs. */
export interface RequestRecord {
  requestId: string;
  route: RouteLabel;
  /** performance.now() at arrival. */
  startedAt: number;
  keyId: string | null;
  model: string | null;
  /** The configured provider the model routed to. */
  provider: string | null;
  stream: boolean;
  usage: Usage | null;
  /** Upstream calls made, in order (fallbacks included); null until the first. */
  attempts: UpstreamAttempt[] | null;
  error: string | null;
  /** The key's metadata JSON, echoed into the request log. */
  metadata: string | null;
  /** An ephemeral token was presented (keyId is then its parent's). */
  ephemeral: boolean;
  ephemeralTokenId: string | null;
  /** The model name sent upstream (a routing prefix such as `anthropic/` stripped); prices are looked up by it. */
  upstreamModel?: string | null;
  /** The request's cost from the price table, in micro-USD; null when unknown. */
  costMicroUsd?: number | null;
}

/** An authenticated route handler. Throwing HttpError answers in OpenAI's shape. */
export type RouteHandler = (
  ctx: AppContext,
  req: IncomingMessage,
  res: ServerResponse,
  rec: RequestRecord,
  key: KeyRecord,
) => Promise<void>;
