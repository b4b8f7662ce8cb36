import { describe, expect, it } from "vitest";
import { McpAccessMode } from "@tollgate/shared";
import { allowedTools, checkServer, checkTool, compileMcpPolicy } from "./access-policy.js";

const policy = (enabled: boolean, accessMode: number, servers: string[] = [], tools: Record<string, string[]> = {}) =>
  compileMcpPolicy({ enabled, accessMode, servers, tools });
const tools = [{ name: "search" }, { name: "get_issue" }, { name: "delete_repo" }];

describe("MCP access policy", () => {
  it("refuses everything when MCP is off or unset", () => {
    expect(checkServer(compileMcpPolicy(null), "github")).toMatchObject({
      code: "mcp_disabled",
      reason: "mcp_disabled",
    });
    expect(checkServer(policy(false, McpAccessMode.ALLOW_ALL), "github")).toMatchObject({ code: "mcp_disabled" });
    expect(checkTool(policy(false, McpAccessMode.ALLOW_ALL), "github", "search")).toMatchObject({
      code: "mcp_tool_denied",
      reason: "mcp_disabled",
    });
    expect(allowedTools(policy(false, McpAccessMode.ALLOW_ALL), "github", tools)).toEqual([]);
  });

  it.each([
    ["allow all", McpAccessMode.ALLOW_ALL, [], { github: true, jira: true }],
    ["deny all", McpAccessMode.DENY_ALL, ["github"], { github: false, jira: false }],
    ["allow list", McpAccessMode.ALLOW_LIST, ["github"], { github: true, jira: false }],
    ["deny list", McpAccessMode.DENY_LIST, ["github"], { github: false, jira: true }],
    ["an unknown mode (a newer control plane) fails closed", 99, [], { github: false, jira: false }],
  ] as const)("%s", (_name, mode, servers, expected) => {
    const p = policy(true, mode, [...servers]);
    for (const [server, allowed] of Object.entries(expected)) {
      expect(checkServer(p, server) === null, server).toBe(allowed);
      expect(checkTool(p, server, "search") === null, server).toBe(allowed);
      expect(allowedTools(p, server, tools).length, server).toBe(allowed ? 3 : 0);
    }
  });

  it("a server named in the tool lists offers only those tools; others offer all", () => {
    const p = policy(true, McpAccessMode.ALLOW_ALL, [], { github: ["search", "get_issue"], jira: [] });
    expect(allowedTools(p, "github", tools).map((t) => t.name)).toEqual(["search", "get_issue"]);
    expect(allowedTools(p, "jira", tools)).toEqual([]);
    expect(allowedTools(p, "slack", tools)).toHaveLength(3);
    const denial = checkTool(p, "github", "delete_repo");
    expect(denial).toMatchObject({
      code: "mcp_tool_denied",
      reason: "not_in_tool_list",
      tool: "delete_repo",
      server: "github",
    });
    expect(denial?.message).toContain('tool "delete_repo" on MCP server "github"');
  });
});
