import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpAccessMode } from "@tollgate/shared";
import { FakeMcpServer } from "@tollgate/testkit/mcp";
import { EMPTY_POLICY, type KeyPolicy } from "../auth/stored-key.js";
import type { McpServerDenial, McpToolDenial } from "./access-policy.js";
import { McpAggregate } from "./mcp-aggregate.js";
import { McpServerProxy, type McpCaller } from "./mcp-proxy.js";
import { newRequestInfo } from "./messages.js";
import { McpServerIndex } from "./server-index.js";
import { sessionKeyOf } from "./session-id.js";
import { UpstreamSessions } from "./upstream-session.js";
import { McpUpstreamClient } from "./upstream.js";

/** The proxy and the aggregate on a bare HTTP server, with a bearer → policy table standing in for the gateway's auth. */
describe("MCP proxy and aggregate against a real MCP server", () => {
  const alpha = new FakeMcpServer({ name: "alpha", bearer: "alpha-upstream-secret" });
  const beta = new FakeMcpServer({ name: "beta", jsonResponses: true });
  const servers = new McpServerIndex();
  const upstream = new McpUpstreamClient();
  const denials: Array<McpServerDenial | McpToolDenial> = [];
  const keys = new Map<string, Readonly<KeyPolicy>>();
  let http: Server;
  let base = "";

  const policy = (mcp: KeyPolicy["mcp"]): Readonly<KeyPolicy> => ({ ...EMPTY_POLICY, mcp });
  keys.set(
    "k-all",
    policy({
      enabled: true,
      accessMode: McpAccessMode.ALLOW_ALL,
      servers: [],
      tools: { alpha: ["echo", "add", "count_slowly"] },
    }),
  );
  keys.set("k-off", policy({ enabled: false, accessMode: McpAccessMode.ALLOW_ALL, servers: [], tools: {} }));
  keys.set("k-deny-all", policy({ enabled: true, accessMode: McpAccessMode.DENY_ALL, servers: [], tools: {} }));
  keys.set(
    "k-allow-beta",
    policy({ enabled: true, accessMode: McpAccessMode.ALLOW_LIST, servers: ["beta"], tools: {} }),
  );
  keys.set("k-deny-beta", policy({ enabled: true, accessMode: McpAccessMode.DENY_LIST, servers: ["beta"], tools: {} }));

  beforeAll(async () => {
    await alpha.start();
    await beta.start();
    servers.replaceAll([
      { id: "mcp_a", name: "alpha", url: alpha.url, auth: { type: "bearer", credentialRef: "env:MCP_SECRET_ALPHA" } },
      { id: "mcp_b", name: "beta", url: beta.url, auth: { type: "none" } },
      // Nothing listens there: the aggregate leaves it out, the proxy says it cannot reach it.
      { id: "mcp_d", name: "down", url: "http://127.0.0.1:1/mcp", auth: { type: "none" } },
      { id: "mcp_n", name: "nocred", url: beta.url, auth: { type: "bearer", credentialRef: "env:MCP_SECRET_UNSET" } },
    ]);
    const credentials = (name: string) => (name === "MCP_SECRET_ALPHA" ? "alpha-upstream-secret" : undefined);
    const proxy = new McpServerProxy({ servers, upstream, credentials, maxMessageBytes: 64 * 1024 });
    const aggregate = new McpAggregate({
      servers,
      sessions: new UpstreamSessions(upstream, credentials),
      maxMessageBytes: 64 * 1024,
      version: "test",
    });
    http = createServer((req, res) => {
      const secret = (req.headers.authorization ?? "").replace(/^Bearer /, "");
      const p = keys.get(secret);
      if (p === undefined) {
        res.writeHead(401).end();
        return;
      }
      const caller: McpCaller = { keyId: secret, policy: p, sessionKey: sessionKeyOf(secret) };
      const path = (req.url ?? "/").split("?")[0]!;
      const name = path.startsWith("/mcp/") ? decodeURIComponent(path.slice(5)) : null;
      const info = newRequestInfo(name);
      const done =
        name === null ? aggregate.handle(req, res, caller, info) : proxy.handle(req, res, caller, name, info);
      done.then(() => info.denial && denials.push(info.denial)).catch(() => res.destroy());
    });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await upstream.close();
    http.closeAllConnections();
    await new Promise((r) => http.close(r));
    await alpha.stop();
    await beta.stop();
  });

  async function connect(path: string, secret: string): Promise<Client> {
    const client = new Client({ name: "test", version: "1" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${base}${path}`), {
        requestInit: { headers: { authorization: `Bearer ${secret}` } },
      }),
    );
    return client;
  }

  it("lists only the allowed tools of a server and calls one, with the upstream credential added", async () => {
    const client = await connect("/mcp/alpha", "k-all");
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(["add", "count_slowly", "echo"]);
    const result = await client.callTool({ name: "add", arguments: { a: 2, b: 3 } });
    expect(result.content).toEqual([{ type: "text", text: "5" }]);
    expect(alpha.hits.every((h) => h.authorization === "Bearer alpha-upstream-secret")).toBe(true);
    await client.close();
  });

  it("refuses a tool outside the key's tool list with a JSON-RPC error naming it; the upstream never sees the call", async () => {
    const client = await connect("/mcp/alpha", "k-all");
    const before = alpha.hits.length;
    await expect(client.callTool({ name: "secret_tool", arguments: {} })).rejects.toMatchObject({
      code: -32001,
      message: expect.stringContaining('tool "secret_tool"'),
    });
    expect(alpha.hits.slice(before).some((h) => h.tool === "secret_tool")).toBe(false);
    expect(denials.at(-1)).toMatchObject({ code: "mcp_tool_denied", tool: "secret_tool", server: "alpha" });
    await client.close();
  });

  it("streams a tool's progress notifications before its result", async () => {
    const client = await connect("/mcp/alpha", "k-all");
    const progress: number[] = [];
    const result = await client.callTool({ name: "count_slowly", arguments: { n: 5 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(progress).toEqual([1, 2, 3, 4, 5]);
    expect(result.content).toEqual([{ type: "text", text: "counted to 5" }]);
    await client.close();
  });

  it("filters a JSON (non-SSE) tools/list answer too", async () => {
    const client = await connect("/mcp/beta", "k-all");
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(["add", "count_slowly", "echo", "hold", "secret_tool", "whoami"]);
    await client.close();
  });

  it.each([
    ["k-off", "alpha", "mcp_disabled"],
    ["k-deny-all", "beta", "mcp_server_denied"],
    ["k-allow-beta", "alpha", "mcp_server_denied"],
    ["k-deny-beta", "beta", "mcp_server_denied"],
  ])("%s is refused %s with 403 JSON", async (secret, server, code) => {
    const res = await fetch(`${base}/mcp/${server}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${secret}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: { code, server } });
  });

  it.each([
    ["k-allow-beta", "beta"],
    ["k-deny-beta", "alpha"],
  ])("%s may use %s", async (secret, server) => {
    const client = await connect(`/mcp/${server}`, secret);
    expect((await client.callTool({ name: "whoami", arguments: {} })).content).toEqual([
      { type: "text", text: server },
    ]);
    await client.close();
  });

  it("aggregates every allowed tool, namespaced by server, and calls through it", async () => {
    const betaSessionsBefore = beta.sessions;
    const client = await connect("/mcp", "k-all");
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    expect(names).toEqual([
      "alpha__add",
      "alpha__count_slowly",
      "alpha__echo",
      "beta__add",
      "beta__count_slowly",
      "beta__echo",
      "beta__hold",
      "beta__secret_tool",
      "beta__whoami",
    ]);
    expect((await client.callTool({ name: "beta__whoami", arguments: {} })).content).toEqual([
      { type: "text", text: "beta" },
    ]);
    await expect(client.callTool({ name: "alpha__secret_tool", arguments: {} })).rejects.toMatchObject({
      code: -32001,
    });
    await expect(client.callTool({ name: "nosuch__echo", arguments: {} })).rejects.toMatchObject({ code: -32602 });
    const progress: number[] = [];
    await client.callTool({ name: "alpha__count_slowly", arguments: { n: 3 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(progress).toEqual([1, 2, 3]);
    // Ending the aggregated session (DELETE) ends the upstream sessions the gateway opened for it.
    expect(beta.sessions).toBeGreaterThan(betaSessionsBefore);
    await (client.transport as StreamableHTTPClientTransport).terminateSession();
    await expect.poll(() => beta.sessions).toBe(betaSessionsBefore);
    await client.close();

    const allowBeta = await connect("/mcp", "k-allow-beta");
    expect((await allowBeta.listTools()).tools.every((t) => t.name.startsWith("beta__"))).toBe(true);
    await allowBeta.close();
  });

  it("refuses a session id issued to another key, before the upstream", async () => {
    const client = await connect("/mcp/beta", "k-all");
    const transport = client.transport as StreamableHTTPClientTransport;
    const before = beta.hits.length;
    const res = await fetch(`${base}/mcp/beta`, {
      method: "POST",
      headers: {
        authorization: "Bearer k-allow-beta",
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": transport.sessionId!,
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: -32004, data: { code: "mcp_session_not_found" } } });
    expect(beta.hits.length).toBe(before);
    await client.close();
  });

  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, {
      method: "POST",
      headers: {
        authorization: "Bearer k-all",
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...headers,
      },
      body,
    });

  it("answers bad input with clear JSON-RPC errors and forwards none of it", async () => {
    const before = alpha.hits.length;
    const cases: Array<[string, number, number]> = [
      ["{not json", 400, -32700],
      [JSON.stringify([{ jsonrpc: "2.0", id: 1, method: "ping" }]), 400, -32600],
      [JSON.stringify({ jsonrpc: "1.0", id: 1, method: "ping" }), 400, -32600],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "sampling/evil" }), 200, -32601],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: {} }), 400, -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping", pad: "x".repeat(70 * 1024) }), 413, -32003],
    ];
    for (const [body, status, code] of cases) {
      const res = await post("/mcp/alpha", body);
      expect(res.status, body.slice(0, 40)).toBe(status);
      expect(((await res.json()) as { error: { code: number } }).error.code, body.slice(0, 40)).toBe(code);
    }
    const down = await post("/mcp/down", JSON.stringify({ jsonrpc: "2.0", id: 3, method: "ping" }));
    expect(down.status).toBe(502);
    expect(await down.json()).toMatchObject({
      id: 3,
      error: { code: -32002, data: { code: "mcp_upstream_unreachable" } },
    });
    const nocred = await post("/mcp/nocred", JSON.stringify({ jsonrpc: "2.0", id: 4, method: "ping" }));
    expect(nocred.status).toBe(502);
    const nocredBody = (await nocred.json()) as { error: { message: string; data: { code: string } } };
    expect(nocredBody.error.data.code).toBe("mcp_upstream_credential_missing");
    expect(nocredBody.error.message).toContain("MCP_SECRET_UNSET is not set on this gateway");
    const unknown = await post("/mcp/nosuch", JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }));
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: "mcp_server_not_found" } });
    expect(alpha.hits.length).toBe(before);
  });
});
