import { McpAccessMode } from "@tollgate/shared";
import type { KeyPolicy, StoredMcpSettings } from "../auth/stored-key.js";

/**
 * A key's MCP permissions, compiled once per key revision. Pure domain: the
 * route layer maps a denial to a 403 (server) or a JSON-RPC error (tool).
 *
 * - `enabled: false` (the default) refuses every server and tool.
 * - Allow All: every server; Deny All: none; Allow List: only `servers`;
 *   Deny List: every server but `servers`.
 * - `tools`: a server named there offers only the tools listed (an empty list:
 *   none); a server not named there offers all its tools.
 */
export interface McpPolicy {
  enabled: boolean;
  mode: McpAccessMode;
  servers: ReadonlySet<string>;
  tools: ReadonlyMap<string, ReadonlySet<string>>;
}

export type McpServerDenialReason = "mcp_disabled" | "deny_all" | "not_in_allow_list" | "in_deny_list";

export interface McpServerDenial {
  /** Stable machine code, used in the 403 body, the audit row and the metric. */
  code: "mcp_server_denied" | "mcp_disabled";
  reason: McpServerDenialReason;
  server: string;
  message: string;
}

export interface McpToolDenial {
  code: "mcp_tool_denied";
  reason: "not_in_tool_list" | McpServerDenialReason;
  server: string;
  tool: string;
  message: string;
}

const DISABLED: McpPolicy = Object.freeze({
  enabled: false,
  mode: McpAccessMode.DENY_ALL,
  servers: new Set<string>(),
  tools: new Map(),
});

export function compileMcpPolicy(settings: StoredMcpSettings | null): McpPolicy {
  if (settings === null || !settings.enabled) return DISABLED;
  return {
    enabled: true,
    // An unknown mode (a newer control plane) fails closed.
    mode: Object.values(McpAccessMode).includes(settings.accessMode)
      ? (settings.accessMode as McpAccessMode)
      : McpAccessMode.DENY_ALL,
    servers: new Set(settings.servers),
    tools: new Map(Object.entries(settings.tools).map(([server, tools]) => [server, new Set(tools)])),
  };
}

const compiled = new WeakMap<Readonly<KeyPolicy>, McpPolicy>();

/** The key's policy, compiled on first use; a new key revision brings a new `policy` object, hence a new entry. */
export function mcpPolicyOf(policy: Readonly<KeyPolicy>): McpPolicy {
  let p = compiled.get(policy);
  if (p === undefined) {
    p = compileMcpPolicy(policy.mcp);
    compiled.set(policy, p);
  }
  return p;
}

function serverReason(policy: McpPolicy, server: string): McpServerDenialReason | null {
  if (!policy.enabled) return "mcp_disabled";
  switch (policy.mode) {
    case McpAccessMode.ALLOW_ALL:
      return null;
    case McpAccessMode.ALLOW_LIST:
      return policy.servers.has(server) ? null : "not_in_allow_list";
    case McpAccessMode.DENY_LIST:
      return policy.servers.has(server) ? "in_deny_list" : null;
    default:
      return "deny_all";
  }
}

const SERVER_MESSAGES: Record<McpServerDenialReason, string> = {
  mcp_disabled: "MCP is disabled for this API key (mcp_enabled is false)",
  deny_all: "this API key's MCP access mode is deny_all",
  not_in_allow_list: "this API key's MCP allow list does not name this server",
  in_deny_list: "this API key's MCP deny list names this server",
};

/** Null when the key may use the server. */
export function checkServer(policy: McpPolicy, server: string): McpServerDenial | null {
  const reason = serverReason(policy, server);
  if (reason === null) return null;
  return {
    code: reason === "mcp_disabled" ? "mcp_disabled" : "mcp_server_denied",
    reason,
    server,
    message: `MCP server "${server}" is not allowed: ${SERVER_MESSAGES[reason]}`,
  };
}

/** Null when the key may call the tool on the server. */
export function checkTool(policy: McpPolicy, server: string, tool: string): McpToolDenial | null {
  const reason =
    serverReason(policy, server) ?? (policy.tools.get(server)?.has(tool) === false ? "not_in_tool_list" : null);
  if (reason === null) return null;
  const why =
    reason === "not_in_tool_list"
      ? `this API key's tool list for "${server}" does not name it`
      : SERVER_MESSAGES[reason];
  return {
    code: "mcp_tool_denied",
    reason,
    server,
    tool,
    message: `tool "${tool}" on MCP server "${server}" is not allowed: ${why}`,
  };
}

/** The tools of `server` the key may see, in their order. */
export function allowedTools<T extends { name: string }>(policy: McpPolicy, server: string, tools: readonly T[]): T[] {
  if (serverReason(policy, server) !== null) return [];
  const only = policy.tools.get(server);
  return only === undefined ? [...tools] : tools.filter((t) => only.has(t.name));
}
