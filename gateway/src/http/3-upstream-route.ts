import type { KeyRecord } from "../auth/key-index.js";
import { checkModel, checkProvider, modelRequiredDenial } from "../auth/policy.js";
import { MAX_JSON_DEPTH } from "../config.js";
import type { AppContext } from "../context.js";
import type { Resolved } from "../providers/registry.js";
import type { Endpoint } from "../providers/types.js";
import type { UsageFormat } from "../providers/usage.js";
import { admitToQuota, settleQuota } from "./4-quota-gate.js";
import { forward, type UpstreamBody } from "./5-forward.js";
import type { RequestRecord } from "./6-request-record.js";
import { errors } from "./errors.js";
import { bodyText, withMembers } from "./json-scan.js";
import { jsonDepthExceeds, readBody } from "./read-body.js";
import type { RouteHandler } from "./route.js";
import { ownedResponse, withOwner } from "./routes/responses.js";

const MAX_LOGGED_MODEL = 200;

/** The client-facing side of each endpoint: path, wire format, an example model for messages. */
const ENDPOINTS: Record<Endpoint, { path: string; format: UsageFormat; example: string }> = {
  chat_completions: { path: "/v1/chat/completions", format: "openai", example: "gpt-4o-mini" },
  completions: { path: "/v1/completions", format: "openai", example: "gpt-3.5-turbo-instruct" },
  embeddings: { path: "/v1/embeddings", format: "openai", example: "text-embedding-3-small" },
  responses: { path: "/v1/responses", format: "openai", example: "gpt-4o-mini" },
  response_input_tokens: { path: "/v1/responses/input_tokens", format: "openai", example: "gpt-4o-mini" },
  response_compact: { path: "/v1/responses/compact", format: "openai", example: "gpt-4o-mini" },
  messages: { path: "/v1/messages", format: "anthropic", example: "claude-sonnet-4-5" },
  count_tokens: { path: "/v1/messages/count_tokens", format: "anthropic", example: "claude-sonnet-4-5" },
};

/** OpenAI-format streams that only report usage when asked (stream_options.include_usage). */
const USAGE_ON_REQUEST = new Set<Endpoint>(["chat_completions", "completions"]);

/**
 * The body to send upstream. The client's bytes pass unchanged unless the
 * routing prefix is stripped from the model, a stream must be asked for its
 * usage, or a response records its owner; then only those members' bytes are
 * rewritten (json-scan.ts), the rest passed as sent.
 */
function upstreamBody(
  endpoint: Endpoint,
  body: Buffer,
  json: Record<string, unknown>,
  upstreamModel: string | undefined,
  stream: boolean,
  key: KeyRecord,
): UpstreamBody {
  const options = json.stream_options;
  const hideUsageChunk =
    stream &&
    USAGE_ON_REQUEST.has(endpoint) &&
    (options === null ||
      typeof options !== "object" ||
      (options as { include_usage?: unknown }).include_usage !== true);
  // A created response records its owner, so any gateway can check it later (routes/responses.ts).
  const owned = endpoint === "responses";
  if (!hideUsageChunk && !owned && upstreamModel === json.model) return { body, json, hideUsageChunk };
  const edits: Record<string, unknown> = owned ? { metadata: withOwner(json, key).metadata } : {};
  if (upstreamModel !== undefined) edits.model = upstreamModel;
  if (hideUsageChunk) {
    edits.stream_options = {
      ...(options !== null && typeof options === "object" && !Array.isArray(options) ? options : {}),
      include_usage: true,
    };
  }
  const rewritten = { ...json, ...edits };
  return { body: withMembers(body, edits) ?? Buffer.from(JSON.stringify(rewritten)), json: rewritten, hideUsageChunk };
}

/** The Responses API's endpoints. */
const RESPONSES_FAMILY = new Set<Endpoint>(["responses", "response_input_tokens", "response_compact"]);

/** Endpoints whose API makes `model` optional (a stored prompt names it). */
const MODEL_OPTIONAL = new Set<Endpoint>(["responses", "response_input_tokens"]);

/** Parses once and checks only what the gateway itself needs. */
function parseModelBody(
  ctx: AppContext,
  body: Buffer,
  example: string,
  modelOptional: boolean,
): Record<string, unknown> {
  // A byte scan first: a pathologically nested body never reaches the parser, nor the
  // upstream that would parse it again. It must be the text: the client's bytes go
  // upstream, and a deep value under a key repeated later is not in the parsed tree.
  const text = bodyText(body);
  if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
    ctx.metrics.rejectedRequest("json_too_deep");
    throw errors.jsonTooDeep(MAX_JSON_DEPTH);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // The parser's message quotes the body, which may hold secrets: keep it out.
    throw errors.invalidJson();
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw errors.bodyNotObject();
  }
  const obj = json as Record<string, unknown>;
  if (modelOptional && obj.model === undefined) return obj;
  if (typeof obj.model !== "string" || obj.model === "") {
    throw errors.missingModel(example);
  }
  return obj;
}

/** The request's model picks the provider (resolveFor); its scopes and endpoints must agree. */
function checkRoute(
  endpoint: Endpoint,
  model: string,
  resolved: Resolved | undefined,
  key: KeyRecord,
  rec: RequestRecord,
): Resolved {
  if (!resolved) {
    throw errors.modelNotFound(model);
  }
  const { provider } = resolved;
  rec.provider = provider.name;
  const denial = checkProvider(key, provider.name);
  if (denial) throw errors.policyDenied(denial, rec.model);
  if (!provider.endpoints.has(endpoint)) {
    const served = [...provider.endpoints].map((e) => `POST ${ENDPOINTS[e].path}`).join(", ");
    throw errors.unsupportedEndpoint(model, provider, ENDPOINTS[endpoint].path, served);
  }
  return resolved;
}

/**
 * A request without a model (a stored prompt picks it): the first provider
 * the key may use that serves the endpoint. A key limited to some models is
 * refused: the gateway cannot check a model it does not see.
 */
function routeWithoutModel(ctx: AppContext, endpoint: Endpoint, key: KeyRecord, rec: RequestRecord): Resolved {
  if (key.allowedModels !== null) throw errors.policyDenied(modelRequiredDenial(key));
  const provider = ctx.providers.defaultFor(endpoint, (name) => checkProvider(key, name) === null);
  if (!provider) throw errors.noProviderFor(ENDPOINTS[endpoint].path);
  rec.provider = provider.name;
  return { provider, upstreamModel: "" };
}

/**
 * A POST endpoint passed through to the provider the model routes to: the
 * client's original bytes go upstream, the upstream's status and bytes come
 * back, usage is read in the provider's own format.
 */
export function upstreamRoute(endpoint: Endpoint): RouteHandler {
  const { example, format } = ENDPOINTS[endpoint];
  return async (ctx: AppContext, req, res, rec, key) => {
    const body = await readBody(req, ctx.config.maxBodyBytes);
    const json = parseModelBody(ctx, body, example, MODEL_OPTIONAL.has(endpoint));
    rec.stream = json.stream === true;
    let resolved: Resolved;
    let upstream: UpstreamBody;
    if (typeof json.model === "string") {
      const model = json.model;
      rec.model = model.slice(0, MAX_LOGGED_MODEL);
      const denial = checkModel(key, model);
      if (denial) throw errors.policyDenied(denial, rec.model);
      let routed = ctx.providers.resolveFor(endpoint, model, rec.requestId);
      // Only a model no configured name claims waits for an upstream's model list.
      if (routed instanceof Promise) routed = await routed;
      resolved = checkRoute(endpoint, model, routed, key, rec);
      rec.upstreamModel = resolved.upstreamModel ?? model;
      upstream = upstreamBody(endpoint, body, json, resolved.upstreamModel, rec.stream, key);
    } else {
      resolved = routeWithoutModel(ctx, endpoint, key, rec);
      upstream = upstreamBody(endpoint, body, json, undefined, rec.stream, key);
    }
    const { provider } = resolved;
    if (RESPONSES_FAMILY.has(endpoint)) {
      // A conversation (Conversations API, not served) has no owner the gateway could check.
      if (json.conversation !== undefined && json.conversation !== null) throw errors.conversationNotServed();
      // Continuing a response: only the key that created it may.
      if (typeof json.previous_response_id === "string")
        await ownedResponse(ctx, key, rec, json.previous_response_id, "previous_response_id");
      rec.provider = provider.name;
    }
    // Fleet-wide limits: reserve before the upstream call, settle with the real usage after.
    let reservation = admitToQuota(ctx, key, provider, json, body.length, rec, res);
    if (reservation instanceof Promise) reservation = await reservation;
    // The client may have left while the request waited for quota: no upstream call then.
    if (res.destroyed || req.socket.destroyed) {
      rec.error = "client_closed";
      if (reservation) ctx.quota.manager.settle(reservation, { tokens: 0, costMicroUsd: 0 });
      return;
    }
    let settled = false;
    const settle = () => {
      if (settled) return undefined;
      settled = true;
      return settleQuota(ctx, key, provider, reservation, rec);
    };
    try {
      // Usage is settled before the answer's last bytes, which await its usage journal line
      // (written with the others of this event-loop turn, see db/usage-journal.ts), so an
      // answered request's usage survives a kill -9.
      await forward(ctx, endpoint, provider, format, upstream, req, res, rec, key, settle);
    } finally {
      settle();
    }
  };
}
