import type { IncomingMessage, ServerResponse } from "node:http";
import { DEV_NO_AUTH_KEY, DEV_NO_AUTH_KEY_ID, PUBLIC_PATH_KEY } from "../auth/authenticate.js";
import type { KeyRecord } from "../auth/key-index.js";
import { parseAuthBypassPaths } from "../config.js";
import type { AppContext } from "../context.js";
import {
  authenticateRequest,
  clientNotBlocked,
  createAdmission,
  denyByPolicy,
  hostPresent,
  ipAllowed,
  keysFresh,
  keysReady,
  urlWithinLimit,
  type Admission,
} from "./2-admission.js";
import { upstreamRoute } from "./3-upstream-route.js";
import { newRequestRecord, recordOnClose, type RequestRecord } from "./6-request-record.js";
import { HttpError, PolicyDeniedError, errors } from "./errors.js";
import { listModels, retrieveModel } from "./models-route.js";
import { mcpRoute } from "./mcp-route.js";
import { listAnthropicModels, retrieveAnthropicModel } from "./routes/anthropic-models.js";
import { cancelResponse, deleteResponse, listInputItems, retrieveResponse } from "./routes/responses.js";
import { sendError } from "./respond.js";
import type { Route, RouteHandler } from "./route.js";
import type { GatewayResponse } from "./gateway-response.js";

const ROUTES = new Map<string, Route>([
  [
    "/v1/chat/completions",
    { label: "chat_completions", methods: { POST: upstreamRoute("chat_completions") }, format: "openai" },
  ],
  ["/v1/completions", { label: "completions", methods: { POST: upstreamRoute("completions") }, format: "openai" }],
  ["/v1/embeddings", { label: "embeddings", methods: { POST: upstreamRoute("embeddings") }, format: "openai" }],
  ["/v1/responses", { label: "responses", methods: { POST: upstreamRoute("responses") }, format: "openai" }],
  [
    "/v1/responses/input_tokens",
    { label: "responses", methods: { POST: upstreamRoute("response_input_tokens") }, format: "openai" },
  ],
  [
    "/v1/responses/compact",
    { label: "responses", methods: { POST: upstreamRoute("response_compact") }, format: "openai" },
  ],
  ["/v1/messages", { label: "messages", methods: { POST: upstreamRoute("messages") }, format: "anthropic" }],
  [
    "/v1/messages/count_tokens",
    { label: "count_tokens", methods: { POST: upstreamRoute("count_tokens") }, format: "anthropic" },
  ],
  [
    "/v1/models",
    {
      label: "models",
      methods: { GET: listModels },
      format: "openai",
      anthropic: { label: "models", methods: { GET: listAnthropicModels }, format: "anthropic" },
    },
  ],
]);

/** MCP's Streamable HTTP transport, on /mcp (aggregated) and every /mcp/{server}. */
const MCP_ROUTE: Route = {
  label: "mcp",
  methods: { POST: mcpRoute, GET: mcpRoute, DELETE: mcpRoute },
  format: "openai",
};

/** Paths with an id in them, tried in order after the exact paths. */
const PARAM_ROUTES: ReadonlyArray<{ pattern: RegExp; route: Route }> = [
  {
    pattern: /^\/v1\/models\/.+$/,
    route: {
      label: "models",
      methods: { GET: retrieveModel },
      format: "openai",
      anthropic: { label: "models", methods: { GET: retrieveAnthropicModel }, format: "anthropic" },
    },
  },
  {
    pattern: /^\/v1\/responses\/[^/]+$/,
    route: { label: "responses", methods: { GET: retrieveResponse, DELETE: deleteResponse }, format: "openai" },
  },
  {
    pattern: /^\/v1\/responses\/[^/]+\/cancel$/,
    route: { label: "responses", methods: { POST: cancelResponse }, format: "openai" },
  },
  {
    pattern: /^\/v1\/responses\/[^/]+\/input_items$/,
    route: { label: "responses", methods: { GET: listInputItems }, format: "openai" },
  },
];

const SERVED =
  "This gateway serves POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses (with GET and DELETE /v1/responses/{id}, POST /v1/responses/{id}/cancel, GET /v1/responses/{id}/input_items, POST /v1/responses/input_tokens and /v1/responses/compact), /v1/messages, /v1/messages/count_tokens, GET /v1/models and /v1/models/{id}, and MCP on /mcp and /mcp/{server}.";

function pathOf(url: string | undefined): string {
  if (!url) return "/";
  const q = url.indexOf("?");
  const path = q === -1 ? url : url.slice(0, q);
  // Tolerate a trailing slash, as clients sometimes build URLs by concatenation.
  return path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
}

/** Paths only Anthropic's API has: a 404 there answers in its shape. */
const ANTHROPIC_PATH = /^\/v1\/(?:messages|complete)(?:\/|$)/;

/**
 * API families the gateway does not serve, and why: each of them runs work
 * later, or stores data, in a way the key's scopes, quotas and budget could
 * not be applied to (a batch's tokens are spent when the provider runs it,
 * not when the gateway sees the request). A clear 404 says so.
 */
const UNSERVED: ReadonlyArray<{ pattern: RegExp; anthropic: boolean; what: string }> = [
  {
    pattern: /^\/v1\/batches(?:\/|$)/,
    anthropic: false,
    what: "The Batch API is not served: a batch's tokens are spent when the provider runs it, where the key's quotas and budget cannot be applied",
  },
  {
    pattern: /^\/v1\/files(?:\/|$)/,
    anthropic: false,
    what: "The Files API is not served: uploads are stored by the provider outside the key's scopes",
  },
  {
    pattern: /^\/v1\/uploads(?:\/|$)/,
    anthropic: false,
    what: "The Uploads API is not served: uploads are stored by the provider outside the key's scopes",
  },
  {
    pattern: /^\/v1\/conversations(?:\/|$)/,
    anthropic: false,
    what: "The Conversations API is not served: conversations are stored by the provider outside the key's scopes; chain responses with previous_response_id",
  },
  {
    pattern: /^\/v1\/chat\/completions\/[^/]+/,
    anthropic: false,
    what: "Stored chat completions (retrieve, update, delete, messages) are not served: the gateway does not keep them per key",
  },
  {
    pattern: /^\/v1\/messages\/batches(?:\/|$)/,
    anthropic: true,
    what: "Message Batches are not served: a batch's tokens are spent when the provider runs it, where the key's quotas and budget cannot be applied",
  },
  {
    pattern: /^\/v1\/files(?:\/|$)/,
    anthropic: true,
    what: "The Files API is not served: uploads are stored by the provider outside the key's scopes",
  },
];

/** An Anthropic SDK sends anthropic-version on every call; OpenAI's never does. */
function fromAnthropicClient(req: IncomingMessage): boolean {
  return req.headers["anthropic-version"] !== undefined;
}

/** The route of a path (its Anthropic variant for an Anthropic client), or null once a 404 is answered. */
function routeOf(req: IncomingMessage, res: ServerResponse, rec: RequestRecord, path: string): Route | null {
  let route =
    ROUTES.get(path) ??
    PARAM_ROUTES.find((r) => r.pattern.test(path))?.route ??
    (path === "/mcp" || path.startsWith("/mcp/") ? MCP_ROUTE : undefined);
  if (route) {
    if (route.anthropic && fromAnthropicClient(req)) route = route.anthropic;
    rec.route = route.label;
    return route;
  }
  rec.error = "not_found";
  const anthropic = ANTHROPIC_PATH.test(path) || fromAnthropicClient(req);
  const unserved = UNSERVED.find((u) => u.pattern.test(path) && u.anthropic === anthropic);
  const err = unserved
    ? errors.notServed(req.method, path, unserved.what, SERVED)
    : errors.unknownUrl(req.method, path, SERVED);
  sendError(res, err, anthropic ? "anthropic" : "openai");
  return null;
}

/** The route's handler for the request's method, or null once a 405 is answered. */
function handlerOf(
  req: IncomingMessage,
  res: ServerResponse,
  rec: RequestRecord,
  route: Route,
  path: string,
): RouteHandler | null {
  const method = req.method ?? "GET";
  const handler = route.methods[method];
  if (handler) return handler;
  const allowed = Object.keys(route.methods).join(", ");
  rec.error = "method_not_allowed";
  sendError(res, errors.methodNotAllowed(method, path, allowed), route.format);
  return null;
}

/** Runs an authenticated (or deliberately unauthenticated) handler; every failure answers in the route's API shape. */
function run(
  a: Admission,
  req: IncomingMessage,
  res: GatewayResponse,
  rec: RequestRecord,
  handler: RouteHandler,
  key: KeyRecord,
  route: Route,
): void {
  handler(a.ctx, req, res, rec, key).catch((err: unknown) => {
    if (err instanceof PolicyDeniedError) {
      denyByPolicy(a, req, res, rec, err, route);
      return;
    }
    if (err instanceof HttpError) {
      if (!rec.error) rec.error = err.code ?? `http_${err.status}`;
      if (!res.headersSent) sendError(res, err, route.format);
      else res.destroy();
      return;
    }
    rec.error = "internal_error";
    a.ctx.logger.error({ err, requestId: rec.requestId, keyId: rec.keyId, keyPrefix: key.prefix }, "request failed");
    if (!res.headersSent) sendError(res, errors.internalError(rec.requestId), route.format);
    else res.destroy();
  });
}

/**
 * The client API: every request runs these steps in order, each a plain call
 * that answers and stops the request when it refuses: bounds and Host
 * (2-admission), route and method (here), key state, brute force,
 * authentication and IP scope (2-admission), then the route's handler
 * (3-upstream-route: body, model, 4-quota-gate, 5-forward). The request is
 * recorded once the response is done (6-request-record).
 */
export function createClientHandler(ctx: AppContext): (req: IncomingMessage, res: GatewayResponse) => void {
  const a = createAdmission(ctx);
  // A graceful stop writes the denial summaries still counted in memory.
  ctx.logWriter.beforeClose(() => a.denials.close());
  const bypassPaths = new Set(parseAuthBypassPaths(ctx.config.authBypassPaths.join(",")));
  const authDisabled = ctx.config.disableAuth;

  return (req, res) => {
    const rec = newRequestRecord();
    res.carry("x-request-id", rec.requestId);
    // In flight until the response closes (recordOnClose ends it).
    ctx.metrics.requestStarted();
    recordOnClose(ctx, rec, res);

    if (!urlWithinLimit(a, req, res, rec, SERVED) || !hostPresent(a, req, res, rec)) return;
    const path = pathOf(req.url);
    const route = routeOf(req, res, rec, path);
    if (route === null) return;
    const handler = handlerOf(req, res, rec, route, path);
    if (handler === null) return;

    // No key checked at all: a public path, or DISABLE_AUTH. The key state
    // does not matter then, so neither readiness nor staleness does.
    if (authDisabled || bypassPaths.has(path)) {
      rec.keyId = authDisabled ? DEV_NO_AUTH_KEY_ID : null;
      run(a, req, res, rec, handler, authDisabled ? DEV_NO_AUTH_KEY : PUBLIC_PATH_KEY, route);
      return;
    }
    if (!keysReady(a, res, rec, route) || !keysFresh(a, res, rec, route)) return;
    const client = clientNotBlocked(a, req, res, rec, route);
    if (client === null) return;
    const key = authenticateRequest(a, req, res, rec, route, client);
    if (key === null || !ipAllowed(a, req, res, rec, route, key)) return;
    run(a, req, res, rec, handler, key, route);
  };
}
