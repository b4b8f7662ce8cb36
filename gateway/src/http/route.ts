import type { IncomingMessage } from "node:http";
import type { KeyRecord } from "../auth/key-index.js";
import type { AppContext } from "../context.js";
import type { RouteLabel } from "../metrics.js";
import type { RequestRecord } from "./6-request-record.js";
import type { GatewayResponse } from "./gateway-response.js";
import type { ErrorFormat } from "./respond.js";

/** An authenticated route handler. Throwing HttpError answers in the route's error shape. */
export type RouteHandler = (
  ctx: AppContext,
  req: IncomingMessage,
  res: GatewayResponse,
  rec: RequestRecord,
  key: KeyRecord,
) => Promise<void>;

/** One path of the client API: its handlers by method, its metrics label and its error shape. */
export interface Route {
  label: RouteLabel;
  methods: Record<string, RouteHandler>;
  /** The API whose error shape this route answers in, whatever the failure. */
  format: ErrorFormat;
  /** The same path as an Anthropic client (one sending anthropic-version) is answered, when it differs. */
  anthropic?: Route;
}
