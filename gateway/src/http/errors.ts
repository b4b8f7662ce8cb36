import type { PolicyDenial } from "../auth/policy.js";
import { formatDuration } from "../background/sync-state.js";

export type OpenAiErrorType =
  | "invalid_request_error"
  | "api_error"
  | "server_error"
  | "rate_limit_error"
  | "insufficient_quota"
  | "requests"
  | "tokens";

/** Tells the SDKs not to retry: the same request would be refused again (a final refusal). */
export const FINAL = { "x-should-retry": "false" } as const;

/** An HTTP error answered in OpenAI's error shape (or Anthropic's, by route). Build one through `errors`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: OpenAiErrorType,
    readonly code: string | null,
    readonly param: string | null = null,
    /** Extra response headers, e.g. Allow or Connection. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** 403: a key scope refused the request. The client handler counts and audits it. */
export class PolicyDeniedError extends HttpError {
  constructor(
    readonly denial: PolicyDenial,
    /** The requested model, when the model was at fault. */
    readonly model: string | null = null,
  ) {
    super(403, denial.message, "invalid_request_error", denial.code, denial.param, { ...FINAL });
    this.name = "PolicyDeniedError";
  }
}

/** Client input quoted in a message, bounded. */
function quotedModel(model: string): string {
  return `'${model.length > 200 ? `${model.slice(0, 200)}...` : model}'`;
}

/** A connection the gateway will not read more of after this answer. */
const CLOSE = { connection: "close" } as const;

/**
 * Every error the client port answers, by name: the one place that holds the
 * status, type, code and wording a client (and its SDK) sees for each.
 */
export const errors = {
  // Before routing: what Node parsed but the gateway refuses, and what Node could not parse.
  urlTooLong: (maxBytes: number, served: string) =>
    new HttpError(
      414,
      `Request URL too long: the limit is ${maxBytes} bytes. ${served}`,
      "invalid_request_error",
      "url_too_long",
      null,
      { ...CLOSE },
    ),
  missingHost: () =>
    new HttpError(
      400,
      "Missing Host header: HTTP/1.1 requests must send one.",
      "invalid_request_error",
      "missing_host_header",
    ),
  headersTooLarge: (maxHeaderBytes: number) =>
    new HttpError(
      431,
      `Request headers too large: the request line and headers may take at most ${maxHeaderBytes} bytes (MAX_HEADER_BYTES).`,
      "invalid_request_error",
      "request_header_fields_too_large",
    ),
  requestTimeout: (requestTimeoutMs: number) =>
    new HttpError(
      408,
      `The request (headers and body) did not arrive within ${Math.round(requestTimeoutMs / 1000)} s (REQUEST_TIMEOUT). Send it at once.`,
      "invalid_request_error",
      "request_timeout",
    ),
  /** `parserCode` is Node's (e.g. HPE_INVALID_HEADER_TOKEN), never the bytes, which may hold a key. */
  malformedHttp: (parserCode: unknown) =>
    new HttpError(
      400,
      `Malformed HTTP request${typeof parserCode === "string" && /^HPE_[A-Z_]+$/.test(parserCode) ? ` (${parserCode})` : ""}: the gateway could not parse it.`,
      "invalid_request_error",
      "malformed_http_request",
    ),
  connectNotSupported: () =>
    new HttpError(
      405,
      "CONNECT is not supported: this gateway is not a proxy.",
      "invalid_request_error",
      "method_not_allowed",
      null,
      { allow: "GET, POST" },
    ),

  // Routing.
  unknownUrl: (method: string | undefined, path: string, served: string) =>
    new HttpError(
      404,
      `Unknown request URL: ${method} ${path.slice(0, 200)}. ${served}`,
      "invalid_request_error",
      "unknown_url",
    ),
  /** A known API family the gateway chose not to serve; `what` says which and why. */
  notServed: (method: string | undefined, path: string, what: string, served: string) =>
    new HttpError(
      404,
      `${method} ${path.slice(0, 200)}: ${what}. ${served}`,
      "invalid_request_error",
      "endpoint_not_served",
    ),
  methodNotAllowed: (method: string, path: string, allowed: string) =>
    new HttpError(
      405,
      `Method ${method} is not allowed on ${path}; use ${allowed}.`,
      "invalid_request_error",
      "method_not_allowed",
      null,
      { allow: allowed },
    ),

  // Whether the gateway can trust its keys at all.
  gatewayNotReady: () =>
    new HttpError(
      503,
      "This gateway has not received its keys from the control plane yet; retry shortly.",
      "server_error",
      "gateway_not_ready",
      null,
      {
        "retry-after": "2",
      },
    ),
  gatewayStale: (staleMs: number, maxStalenessMs: number) =>
    new HttpError(
      503,
      `This gateway has had no contact with its control plane for ${formatDuration(staleMs)}, longer than its MAX_STALENESS of ${formatDuration(maxStalenessMs)}, so it refuses requests rather than trust keys that may have been revoked since. Retry later or use another gateway.`,
      "server_error",
      "gateway_stale",
      null,
      { "retry-after": "5" },
    ),

  // The caller and its key.
  clientBlocked: (client: string, retryAfterSeconds: number) =>
    new HttpError(
      429,
      `Too many requests with invalid API keys from ${client}; retry after ${retryAfterSeconds} seconds.`,
      "rate_limit_error",
      "too_many_failed_attempts",
      null,
      { "retry-after": String(retryAfterSeconds) },
    ),
  /** `message` is the authenticator's, which never quotes the presented credential. */
  invalidApiKey: (message: string) =>
    new HttpError(401, message, "invalid_request_error", "invalid_api_key", null, { ...FINAL }),
  policyDenied: (denial: PolicyDenial, model: string | null = null) => new PolicyDeniedError(denial, model),

  // The request body.
  /** `close`: the rest of the body was not read, so the connection cannot serve another request. */
  bodyTooLarge: (limit: number, close: boolean) =>
    new HttpError(
      413,
      `Request body too large: the limit is ${limit} bytes (MAX_BODY_BYTES). Send a smaller request.`,
      "invalid_request_error",
      "request_too_large",
      null,
      close ? { ...CLOSE, ...FINAL } : { ...FINAL },
    ),
  incompleteBody: () =>
    new HttpError(
      400,
      "The request body ended before it was complete (connection closed, or a broken chunked encoding).",
      "invalid_request_error",
      "incomplete_body",
      null,
      { ...CLOSE },
    ),
  jsonTooDeep: (maxDepth: number) =>
    new HttpError(
      400,
      `The JSON body is nested more than ${maxDepth} levels deep, this gateway's limit. Send a flatter request.`,
      "invalid_request_error",
      "json_too_deep",
    ),
  /** Never the parser's message: it quotes the body, which may hold secrets. */
  invalidJson: () =>
    new HttpError(
      400,
      "We could not parse the JSON body of your request. Send a JSON object with 'Content-Type: application/json'.",
      "invalid_request_error",
      "invalid_json",
    ),
  bodyNotObject: () =>
    new HttpError(400, "The request body must be a JSON object.", "invalid_request_error", "invalid_json"),
  missingModel: (example: string) =>
    new HttpError(
      400,
      `Missing required parameter: 'model'. Set it to the model to call, e.g. "${example}".`,
      "invalid_request_error",
      "missing_required_parameter",
      "model",
    ),

  // Routing by model.
  modelNotFound: (model: string) =>
    new HttpError(
      404,
      `The model ${quotedModel(model)} does not exist or is not served by this gateway.`,
      "invalid_request_error",
      "model_not_found",
      "model",
    ),
  /** A provider refused the model before any call (e.g. not an Azure deployment name); its message says why. */
  modelNotCallable: (message: string) =>
    new HttpError(404, message, "invalid_request_error", "model_not_found", "model"),
  unsupportedEndpoint: (model: string, provider: { name: string; kind: string }, path: string, served: string) =>
    new HttpError(
      400,
      `The model ${quotedModel(model)} is served by provider '${provider.name}' (${provider.kind}), which does not serve POST ${path}; use ${served}.`,
      "invalid_request_error",
      "unsupported_endpoint",
      "model",
    ),

  noProviderFor: (path: string) =>
    new HttpError(
      404,
      `No provider this key may use serves POST ${path} on this gateway.`,
      "invalid_request_error",
      "model_not_found",
      "model",
    ),

  conversationNotServed: () =>
    new HttpError(
      400,
      "The 'conversation' parameter is not supported by this gateway: it cannot check who owns a conversation. Chain responses with 'previous_response_id' instead.",
      "invalid_request_error",
      "unsupported_parameter",
      "conversation",
    ),

  // Fleet quotas: the quota gate words the message and sets Retry-After. OpenAI's
  // own codes and types, which client code keys on: a spent budget is
  // insufficient_quota, a rate limit names what ran out (requests or tokens).
  /** `final`: the budget does not reset, so no retry can succeed. */
  budgetExceeded: (message: string, headers: Record<string, string>, final: boolean) =>
    new HttpError(
      429,
      message,
      "insufficient_quota",
      "insufficient_quota",
      null,
      final ? { ...headers, ...FINAL } : headers,
    ),
  rateLimitExceeded: (message: string, headers: Record<string, string>, unit: "requests" | "tokens") =>
    new HttpError(429, message, unit, "rate_limit_exceeded", null, headers),

  // The upstream.
  upstreamFailed: (status: number, message: string, timedOut: boolean) =>
    new HttpError(status, message, "server_error", timedOut ? "upstream_timeout" : "upstream_unreachable"),
  upstreamAuthFailed: (requestId: string) =>
    new HttpError(
      502,
      `The upstream provider refused the gateway's credentials (request id ${requestId}). This is not about your API key: the gateway's operator must fix the provider configuration.`,
      "server_error",
      "upstream_auth_failed",
    ),
  internalError: (requestId: string) =>
    new HttpError(
      500,
      `The gateway failed to handle this request (request id ${requestId}).`,
      "server_error",
      "internal_error",
    ),
};
