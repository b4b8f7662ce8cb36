import type { IncomingMessage, ServerResponse } from "node:http";
import type { McpServerDenial, McpToolDenial } from "./access-policy.js";
import { RPC, rpcError, type JsonRpcErrorBody, type JsonRpcId } from "./json-rpc.js";

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
