import type { IncomingMessage, ServerResponse } from "node:http";
import { allowedTools, checkServer, checkTool, mcpPolicyOf, type McpPolicy } from "./access-policy.js";
import { RPC, rpcError, type JsonRpcId } from "./json-rpc.js";
import {
  presentedSession,
  readClientMessage,
  writeHttpError,
  writeJson,
  writeRpcError,
  type McpRequestInfo,
} from "./messages.js";
import type { McpCaller } from "./mcp-proxy.js";
import type { McpServerIndex, McpServerRecord } from "./server-index.js";
import { newAggregateSessionId, wrapSessionId } from "./session-id.js";
import { GATEWAY_PROTOCOL_VERSION, UpstreamCallError, type UpstreamSessions } from "./upstream-session.js";
import { pipeAnswer, readText } from "./upstream.js";

/** Between a server's name and its tool's in the aggregated tool list. Server names have no underscore, so the first one splits. */
export const TOOL_SEPARATOR = "__";
const SCOPE = "*";
const SUPPORTED_VERSIONS = new Set(["2025-06-18", "2025-03-26", "2024-11-05"]);
const MAX_PAGES = 20;

export interface McpAggregateOptions {
  servers: McpServerIndex;
  sessions: UpstreamSessions;
  maxMessageBytes: number;
  version: string;
}

/**
 * `/mcp`: one MCP server offering every tool the key may use, of every server
 * it may use, named `{server}__{tool}`, so a client configures one URL. Tools
 * only: resources and prompts are served by `/mcp/{server}`.
 */
export class McpAggregate {
  constructor(private readonly o: McpAggregateOptions) {}

  async handle(req: IncomingMessage, res: ServerResponse, caller: McpCaller, info: McpRequestInfo): Promise<void> {
    const policy = mcpPolicyOf(caller.policy);
    if (!policy.enabled) {
      const denial = checkServer(policy, SCOPE)!;
      info.outcome = "disabled";
      info.denial = denial;
      writeHttpError(res, 403, denial.code, "MCP is disabled for this API key (mcp_enabled is false)");
      return;
    }
    const scope = presentedSession(
      req,
      res,
      info,
      caller.sessionKey,
      SCOPE,
      "unknown MCP session for this API key: initialize a new session",
    );
    if (scope === undefined) return;
    const method = req.method ?? "GET";
    if (method === "DELETE") {
      info.method = "session/delete";
      if (scope !== null) this.o.sessions.forget(scope);
      res.writeHead(200).end();
      return;
    }
    if (method !== "POST") {
      info.outcome = "bad_request";
      res.setHeader("allow", "POST, DELETE");
      writeHttpError(
        res,
        405,
        "method_not_allowed",
        `${method} is not served on the aggregated /mcp (no server-initiated stream): use POST, or /mcp/{server}`,
      );
      return;
    }
    const read = await readClientMessage(req, res, info, this.o.maxMessageBytes);
    if (read === null) return;
    const { message } = read;
    if (message.kind !== "request") {
      if (message.kind === "notification") info.method = message.method;
      res.writeHead(202).end();
      return;
    }
    info.method = message.method;
    await caller.admit?.();
    const sessionScope = scope ?? `key:${caller.keyId}`;
    switch (message.method) {
      case "initialize":
        return this.#initialize(res, caller, message.id, message.params);
      case "ping":
        return writeJson(res, 200, { jsonrpc: "2.0", id: message.id, result: {} });
      case "tools/list":
        return this.#listTools(res, policy, sessionScope, message.id, info);
      case "tools/call":
        return this.#callTool(res, policy, sessionScope, message.id, message.params ?? {}, info);
      default:
        info.outcome = "unknown_method";
        writeJson(
          res,
          200,
          rpcError(
            message.id,
            RPC.methodNotFound,
            `"${message.method}" is not served on the aggregated /mcp, which offers tools only: use /mcp/{server}`,
          ),
        );
    }
  }

  #initialize(
    res: ServerResponse,
    caller: McpCaller,
    id: JsonRpcId,
    params: Record<string, unknown> | undefined,
  ): void {
    const asked = params?.protocolVersion;
    const protocolVersion =
      typeof asked === "string" && SUPPORTED_VERSIONS.has(asked) ? asked : GATEWAY_PROTOCOL_VERSION;
    const session = wrapSessionId(caller.sessionKey, SCOPE, newAggregateSessionId());
    writeJson(
      res,
      200,
      {
        jsonrpc: "2.0",
        id,
        result: {
          protocolVersion,
          capabilities: { tools: { listChanged: false } },
          serverInfo: { name: "tollgate", version: this.o.version },
          instructions: `Tools of several MCP servers, each named {server}${TOOL_SEPARATOR}{tool}.`,
        },
      },
      { "mcp-session-id": session },
    );
  }

  async #listTools(
    res: ServerResponse,
    policy: McpPolicy,
    scope: string,
    id: JsonRpcId,
    info: McpRequestInfo,
  ): Promise<void> {
    const servers = this.o.servers.all().filter((s) => checkServer(policy, s.name) === null);
    // A server that fails leaves its tools out rather than failing the whole list; the request log says so.
    const lists = await Promise.all(
      servers.map((s) =>
        this.#toolsOf(scope, s, policy).catch(() => {
          info.outcome = "partial";
          return [];
        }),
      ),
    );
    writeJson(res, 200, { jsonrpc: "2.0", id, result: { tools: lists.flat() } });
  }

  async #toolsOf(scope: string, server: McpServerRecord, policy: McpPolicy): Promise<Array<Record<string, unknown>>> {
    const tools: Array<{ name: string }> = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const reply = await this.o.sessions.call(scope, server, "tools/list", cursor === undefined ? {} : { cursor });
      const result = reply.result as { tools?: unknown; nextCursor?: unknown } | undefined;
      if (!Array.isArray(result?.tools)) break;
      for (const t of result.tools) if (typeof t?.name === "string") tools.push(t);
      if (typeof result.nextCursor !== "string") break;
      cursor = result.nextCursor;
    }
    return allowedTools(policy, server.name, tools).map((t) => ({
      ...t,
      name: `${server.name}${TOOL_SEPARATOR}${t.name}`,
    }));
  }

  async #callTool(
    res: ServerResponse,
    policy: McpPolicy,
    scope: string,
    id: JsonRpcId,
    params: Record<string, unknown>,
    info: McpRequestInfo,
  ): Promise<void> {
    const full = String(params.name);
    const at = full.indexOf(TOOL_SEPARATOR);
    const server = at > 0 ? this.o.servers.get(full.slice(0, at)) : undefined;
    if (server === undefined) {
      info.outcome = "unknown_tool";
      writeJson(
        res,
        200,
        rpcError(
          id,
          RPC.invalidParams,
          `no tool "${full}": aggregated tools are named {server}${TOOL_SEPARATOR}{tool}, as tools/list shows`,
          { code: "mcp_tool_not_found", tool: full },
        ),
      );
      return;
    }
    const tool = full.slice(at + TOOL_SEPARATOR.length);
    info.server = server.name;
    info.tool = tool;
    const denial = checkTool(policy, server.name, tool);
    if (denial !== null) {
      info.outcome = "denied_tool";
      info.denial = denial;
      writeJson(
        res,
        200,
        rpcError(id, RPC.toolDenied, denial.message, { code: denial.code, server: server.name, tool }),
      );
      return;
    }
    const abort = new AbortController();
    res.once("close", () => abort.abort());
    let answer;
    try {
      answer = await this.o.sessions.request(
        scope,
        server,
        { jsonrpc: "2.0", id, method: "tools/call", params: { ...params, name: tool } } as { id: JsonRpcId },
        abort.signal,
      );
    } catch (err) {
      info.outcome = "upstream_error";
      const e =
        err instanceof UpstreamCallError
          ? err
          : new UpstreamCallError(`MCP server "${server.name}" could not be reached`, "mcp_upstream_unreachable");
      writeRpcError(res, 502, rpcError(id, RPC.upstreamError, e.message, { code: e.code }));
      return;
    }
    if (answer.status >= 400) info.outcome = "upstream_status";
    const headers: Record<string, string> = {};
    const type = answer.headers["content-type"];
    if (typeof type === "string") headers["content-type"] = type;
    if (typeof type === "string" && type.startsWith("text/event-stream")) headers["cache-control"] = "no-cache";
    else {
      const text = await readText(answer.body, 8 * 1024 * 1024);
      res.writeHead(answer.status, { ...headers, "content-length": Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    res.writeHead(answer.status, headers);
    res.flushHeaders();
    await pipeAnswer(answer, res);
  }
}
