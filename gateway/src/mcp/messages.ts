import type { IncomingMessage, ServerResponse } from "node:http";
import type { McpServerDenial, McpToolDenial } from "./access-policy.js";
import {
  RPC,
  parseClientMessage,
  rpcError,
  type ClientMessage,
  type JsonRpcErrorBody,
  type JsonRpcId,
} from "./json-rpc.js";
import { unwrapSessionId } from "./session-id.js";

/** What one MCP request did, for the request log, the audit row and the metrics. */
export interface McpRequestInfo {
  /** The server name as the client gave it (bounded by the URL limit); null on /mcp before a tool names one. */
  server: string | null;
  tool: string | null;
  method: string | null;
  /** ok, partial, denied_server, denied_tool, disabled, bad_request, unknown_server, unknown_tool, bad_session, upstream_error, upstream_status, too_large, unknown_method, rate_limited. */
  outcome: string;
  /** Set when the key's policy refused: the route layer audits it. */
  denial: McpServerDenial | McpToolDenial | null;
}

export function newRequestInfo(server: string | null): McpRequestInfo {
  return { server, tool: null, method: null, outcome: "ok", denial: null };
}

export function writeJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(value);
  res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

export function writeRpcError(
  res: ServerResponse,
  status: number,
  body: JsonRpcErrorBody,
  headers?: Record<string, string>,
): void {
  writeJson(res, status, body, headers);
}

/** A refusal of the HTTP request itself (no JSON-RPC id to answer): `{ error: { code, message } }`. */
export function writeHttpError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
): void {
  writeJson(res, status, { error: { code, message, ...extra } });
}

export class BodyTooLargeError extends Error {}

/** The request body, refused past `limit` bytes (the rest is not read). */
export async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) throw new BodyTooLargeError();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BodyTooLargeError();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export function tooLarge(limit: number, id: JsonRpcId | null = null): JsonRpcErrorBody {
  return rpcError(id, RPC.tooLarge, `the MCP message is larger than ${limit} bytes`, {
    code: "mcp_message_too_large",
    limit,
  });
}

/**
 * The session the client's `mcp-session-id` names, unwrapped for `scope`: null when it
 * presented none, undefined when it presented one this key and scope do not own (the
 * 404 is written, so the caller stops).
 */
export function presentedSession(
  req: IncomingMessage,
  res: ServerResponse,
  info: McpRequestInfo,
  sessionKey: Buffer,
  scope: string,
  unknownMessage: string,
): string | null | undefined {
  const presented = req.headers["mcp-session-id"];
  if (typeof presented !== "string") return null;
  const session = unwrapSessionId(sessionKey, scope, presented);
  if (session !== null) return session;
  info.outcome = "bad_session";
  writeRpcError(res, 404, rpcError(null, RPC.badSession, unknownMessage, { code: "mcp_session_not_found" }));
  return undefined;
}

/**
 * The client's JSON-RPC message and the body it came in, or null when the body was too
 * large or not a message (the error is written, so the caller stops).
 */
export async function readClientMessage(
  req: IncomingMessage,
  res: ServerResponse,
  info: McpRequestInfo,
  maxMessageBytes: number,
): Promise<{ text: string; message: ClientMessage } | null> {
  let text: string;
  try {
    text = await readBody(req, maxMessageBytes);
  } catch (err) {
    if (!(err instanceof BodyTooLargeError)) throw err;
    info.outcome = "too_large";
    writeRpcError(res, 413, tooLarge(maxMessageBytes), { connection: "close" });
    return null;
  }
  const parsed = parseClientMessage(text);
  if (!parsed.ok) {
    info.outcome = parsed.error.error.code === RPC.methodNotFound ? "unknown_method" : "bad_request";
    writeRpcError(res, parsed.error.error.code === RPC.methodNotFound ? 200 : 400, parsed.error);
    return null;
  }
  return { text, message: parsed.message };
}
