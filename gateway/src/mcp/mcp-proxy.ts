import type { IncomingMessage, ServerResponse } from "node:http";
import { StringDecoder } from "node:string_decoder";
import type { KeyPolicy } from "../auth/stored-key.js";
import { allowedTools, checkServer, checkTool, mcpPolicyOf } from "./access-policy.js";
import { resolveAuth, type CredentialLookup } from "./credentials.js";
import { RPC, rpcError, type ClientMessage, type JsonRpcId } from "./json-rpc.js";
import { presentedSession, readClientMessage, writeHttpError, writeRpcError, type McpRequestInfo } from "./messages.js";
import type { McpServerIndex, McpServerRecord } from "./server-index.js";
import { wrapSessionId } from "./session-id.js";
import { SseSplitter, replaceData } from "./sse.js";
import { pipeAnswer, readText, type McpUpstreamClient, type UpstreamAnswer } from "./upstream.js";

/** The authenticated caller of one MCP request. */
export interface McpCaller {
  keyId: string;
  policy: Readonly<KeyPolicy>;
  /** sessionKeyOf(presented credential): binds session ids to it. */
  sessionKey: Buffer;
  /** Counts one JSON-RPC request against the key's limits; throws the refusal. Notifications and responses are not counted. */
  admit?: () => Promise<void>;
}

export interface McpProxyOptions {
  servers: McpServerIndex;
  upstream: McpUpstreamClient;
  credentials: CredentialLookup;
  /** Largest client message accepted. */
  maxMessageBytes: number;
  /** Largest upstream answer the gateway reads whole (a tools/list it filters). */
  maxInspectedBytes?: number;
}

/** Client headers passed to the upstream as they are; never Authorization (the Tollgate key). */
const FORWARDED = ["mcp-protocol-version", "last-event-id"] as const;

/**
 * `/mcp/{server}`: MCP's Streamable HTTP transport proxied to one upstream
 * server, with the key's policy enforced on the way (server, tools/list,
 * tools/call) and the upstream's session id bound to the caller's credential.
 */
export class McpServerProxy {
  readonly #o: Required<McpProxyOptions>;

  constructor(options: McpProxyOptions) {
    this.#o = { maxInspectedBytes: 8 * 1024 * 1024, ...options };
  }

  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    caller: McpCaller,
    name: string,
    info: McpRequestInfo,
  ): Promise<void> {
    const server = this.#o.servers.get(name);
    if (server === undefined) {
      info.outcome = "unknown_server";
      writeHttpError(res, 404, "mcp_server_not_found", `no MCP server named "${name}" in this organization`);
      return;
    }
    const policy = mcpPolicyOf(caller.policy);
    const denial = checkServer(policy, name);
    if (denial !== null) {
      info.outcome = denial.code === "mcp_disabled" ? "disabled" : "denied_server";
      info.denial = denial;
      writeHttpError(res, 403, denial.code, denial.message, { server: name });
      return;
    }
    const method = req.method ?? "GET";
    if (method !== "POST" && method !== "GET" && method !== "DELETE") {
      info.outcome = "bad_request";
      res.setHeader("allow", "GET, POST, DELETE");
      writeHttpError(
        res,
        405,
        "method_not_allowed",
        `${method} is not part of MCP's Streamable HTTP transport: use POST, GET or DELETE`,
      );
      return;
    }
    const session = presentedSession(
      req,
      res,
      info,
      caller.sessionKey,
      name,
      "unknown MCP session for this API key and server: initialize a new session",
    );
    if (session === undefined) return;
    if (method !== "POST") {
      info.method = method === "GET" ? "stream" : "session/delete";
      await this.#forward(req, res, caller, server, { method, session, body: undefined, message: null }, info);
      return;
    }

    const read = await readClientMessage(req, res, info, this.#o.maxMessageBytes);
    if (read === null) return;
    const { text, message } = read;
    if (message.kind !== "response") info.method = message.method;
    if (message.kind === "request") await caller.admit?.();
    if (message.kind === "request" && message.method === "tools/call") {
      const tool = String(message.params?.name);
      info.tool = tool;
      const toolDenial = checkTool(policy, name, tool);
      if (toolDenial !== null) {
        info.outcome = "denied_tool";
        info.denial = toolDenial;
        writeRpcError(
          res,
          200,
          rpcError(message.id, RPC.toolDenied, toolDenial.message, { code: toolDenial.code, server: name, tool }),
        );
        return;
      }
    }
    await this.#forward(req, res, caller, server, { method: "POST", session, body: text, message }, info);
  }

  async #forward(
    req: IncomingMessage,
    res: ServerResponse,
    caller: McpCaller,
    server: McpServerRecord,
    call: {
      method: "GET" | "POST" | "DELETE";
      session: string | null;
      body: string | undefined;
      message: ClientMessage | null;
    },
    info: McpRequestInfo,
  ): Promise<void> {
    const id: JsonRpcId | null = call.message?.kind === "request" ? call.message.id : null;
    const auth = resolveAuth(server.auth, this.#o.credentials);
    if (!auth.ok) {
      info.outcome = "upstream_error";
      writeRpcError(
        res,
        502,
        rpcError(
          id,
          RPC.upstreamError,
          `MCP server "${server.name}" is not usable from this gateway: ${auth.message}`,
          { code: "mcp_upstream_credential_missing" },
        ),
      );
      return;
    }
    const headers: Record<string, string> = {
      accept: call.method === "GET" ? "text/event-stream" : "application/json, text/event-stream",
    };
    if (call.body !== undefined) headers["content-type"] = "application/json";
    for (const h of FORWARDED) {
      const v = req.headers[h];
      if (typeof v === "string") headers[h] = v;
    }
    if (call.session !== null) headers["mcp-session-id"] = call.session;
    if (auth.header !== null) headers[auth.header[0]] = auth.header[1];

    const abort = new AbortController();
    res.once("close", () => abort.abort());
    let answer: UpstreamAnswer;
    try {
      answer = await this.#o.upstream.send({
        method: call.method,
        url: new URL(server.url),
        headers,
        body: call.body,
        signal: abort.signal,
      });
    } catch {
      info.outcome = "upstream_error";
      // The cause stays out of the answer: it may name internal hosts.
      writeRpcError(
        res,
        502,
        rpcError(id, RPC.upstreamError, `MCP server "${server.name}" could not be reached`, {
          code: "mcp_upstream_unreachable",
        }),
      );
      return;
    }
    if (answer.status >= 400) info.outcome = "upstream_status";
    const out: Record<string, string> = {};
    const type = answer.headers["content-type"];
    if (typeof type === "string") out["content-type"] = type;
    const upstreamSession = answer.headers["mcp-session-id"];
    if (typeof upstreamSession === "string" && upstreamSession.length > 0) {
      out["mcp-session-id"] = wrapSessionId(caller.sessionKey, server.name, upstreamSession);
    }
    const isSse = typeof type === "string" && type.startsWith("text/event-stream");
    if (isSse) out["cache-control"] = "no-cache";

    const filterList = call.message?.kind === "request" && call.message.method === "tools/list" && answer.status < 400;
    if (filterList && !isSse) {
      const text = await readText(answer.body, this.#o.maxInspectedBytes);
      const filtered = filterToolsListMessage(text, caller, server.name);
      res.writeHead(answer.status, { ...out, "content-length": Buffer.byteLength(filtered) });
      res.end(filtered);
      return;
    }
    if (!isSse && !filterList) {
      // A JSON answer (or an empty 202) leaves in one write with its length: no chunked framing, one packet for a small result.
      const text = await readText(answer.body, this.#o.maxInspectedBytes);
      res.writeHead(answer.status, { ...out, "content-length": Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    res.writeHead(answer.status, out);
    res.flushHeaders();
    if (filterList) {
      const splitter = new SseSplitter();
      // Decoded as a stream: a character split between two chunks stays whole.
      const decoder = new StringDecoder("utf8");
      try {
        for await (const chunk of answer.body as AsyncIterable<Buffer>) {
          for (const event of splitter.push(decoder.write(chunk))) {
            const data =
              event.data === ""
                ? event.raw
                : replaceData(event.raw, filterToolsListMessage(event.data, caller, server.name));
            res.write(`${data}\n\n`);
          }
        }
        res.end(splitter.rest());
      } catch {
        res.destroy();
      }
      return;
    }
    await pipeAnswer(answer, res);
  }
}

/** A tools/list answer with only the tools the caller may see; anything else is passed as it came. */
function filterToolsListMessage(text: string, caller: McpCaller, server: string): string {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return text;
  }
  const result = (message as { result?: { tools?: unknown } }).result;
  if (result === undefined || !Array.isArray(result.tools)) return text;
  result.tools = allowedTools(
    mcpPolicyOf(caller.policy),
    server,
    result.tools.filter((t): t is { name: string } => typeof t?.name === "string"),
  );
  return JSON.stringify(message);
}
