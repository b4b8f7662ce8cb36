/**
 * The JSON-RPC 2.0 messages of MCP's Streamable HTTP transport, as the gateway
 * inspects them: one message per POST (MCP 2025-06-18 dropped batches).
 */

export type JsonRpcId = string | number;

export type ClientMessage =
  | { kind: "request"; id: JsonRpcId; method: string; params: Record<string, unknown> | undefined }
  | { kind: "notification"; method: string }
  | { kind: "response"; id: JsonRpcId };

/** Stable JSON-RPC error codes the gateway answers with. */
export const RPC = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
  /** Server-defined range: a policy of the key refused the tool. */
  toolDenied: -32001,
  /** The upstream MCP server could not be reached or answered badly. */
  upstreamError: -32002,
  /** The request was too large. */
  tooLarge: -32003,
  /** The session id does not belong to this key or server. */
  badSession: -32004,
} as const;

export interface JsonRpcErrorBody {
  jsonrpc: "2.0";
  id: JsonRpcId | null;
  error: { code: number; message: string; data?: Record<string, unknown> };
}

export function rpcError(
  id: JsonRpcId | null,
  code: number,
  message: string,
  data?: Record<string, unknown>,
): JsonRpcErrorBody {
  return { jsonrpc: "2.0", id, error: { code, message, ...(data ? { data } : {}) } };
}

/** The methods a client may send; anything else is refused here and never reaches the upstream. */
const CLIENT_METHODS = new Set([
  "initialize",
  "ping",
  "tools/list",
  "tools/call",
  "resources/list",
  "resources/templates/list",
  "resources/read",
  "resources/subscribe",
  "resources/unsubscribe",
  "prompts/list",
  "prompts/get",
  "completion/complete",
  "logging/setLevel",
]);

export type ParseOutcome = { ok: true; message: ClientMessage } | { ok: false; error: JsonRpcErrorBody };

function isId(v: unknown): v is JsonRpcId {
  return typeof v === "string" || (typeof v === "number" && Number.isFinite(v));
}

/** Validates one client message; every refusal names what was wrong. */
export function parseClientMessage(body: string): ParseOutcome {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { ok: false, error: rpcError(null, RPC.parseError, "the request body is not valid JSON") };
  }
  if (Array.isArray(value)) {
    return {
      ok: false,
      error: rpcError(
        null,
        RPC.invalidRequest,
        "JSON-RPC batches are not supported: send one message per request (MCP 2025-06-18)",
      ),
    };
  }
  if (value === null || typeof value !== "object") {
    return { ok: false, error: rpcError(null, RPC.invalidRequest, "the request body must be a JSON-RPC 2.0 object") };
  }
  const m = value as Record<string, unknown>;
  const id = isId(m.id) ? m.id : null;
  if (m.jsonrpc !== "2.0") return { ok: false, error: rpcError(id, RPC.invalidRequest, 'jsonrpc must be "2.0"') };
  if (m.method === undefined) {
    if (id === null || !("result" in m || "error" in m)) {
      return {
        ok: false,
        error: rpcError(
          id,
          RPC.invalidRequest,
          "a message needs a method (request, notification) or an id with result or error (response)",
        ),
      };
    }
    return { ok: true, message: { kind: "response", id } };
  }
  if (typeof m.method !== "string" || m.method.length === 0 || m.method.length > 200) {
    return { ok: false, error: rpcError(id, RPC.invalidRequest, "method must be a non-empty string") };
  }
  if (m.params !== undefined && (m.params === null || typeof m.params !== "object" || Array.isArray(m.params))) {
    return { ok: false, error: rpcError(id, RPC.invalidParams, "params must be an object") };
  }
  if (!("id" in m)) {
    if (!m.method.startsWith("notifications/")) {
      return {
        ok: false,
        error: rpcError(null, RPC.invalidRequest, `"${m.method}" is sent without an id: only notifications/* may be`),
      };
    }
    return { ok: true, message: { kind: "notification", method: m.method } };
  }
  if (id === null) return { ok: false, error: rpcError(null, RPC.invalidRequest, "id must be a string or a number") };
  if (!CLIENT_METHODS.has(m.method)) {
    return {
      ok: false,
      error: rpcError(id, RPC.methodNotFound, `method "${m.method}" is not an MCP client method this gateway forwards`),
    };
  }
  const params = m.params as Record<string, unknown> | undefined;
  if (m.method === "tools/call" && (typeof params?.name !== "string" || params.name.length === 0)) {
    return { ok: false, error: rpcError(id, RPC.invalidParams, "tools/call needs params.name, the tool's name") };
  }
  return { ok: true, message: { kind: "request", id, method: m.method, params } };
}
