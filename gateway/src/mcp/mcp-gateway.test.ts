import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ChangeSchema, KeyStatus, McpAccessMode, McpServerAuthType, createLogger, type Change } from "@tollgate/shared";
import { FakeMcpServer } from "@tollgate/testkit/mcp";
import { createGateway, type Gateway } from "../index.js";
import { FakeControlPlane, makeKey, tempDir, upsertChange, withFields, type TestKey } from "@tollgate/testkit";
import { testConfig } from "../../test/test-config.js";

const UPSTREAM_SECRET = "alpha-upstream-credential-9d2e71";

function mcpKey(
  enabled: boolean,
  accessMode: McpAccessMode,
  servers: string[] = [],
  tools: Record<string, string[]> = {},
): TestKey {
  const key = makeKey();
  key.upsert.mcp = {
    $typeName: "tollgate.sync.v1.McpSettings",
    enabled,
    accessMode,
    servers,
    tools: Object.fromEntries(
      Object.entries(tools).map(([s, t]) => [s, { $typeName: "tollgate.sync.v1.McpToolList", tools: t }]),
    ),
  };
  return key;
}

function serverChange(revision: number, id: string, name: string, url: string, bearerRef?: string): Change {
  return create(ChangeSchema, {
    revision: BigInt(revision),
    op: {
      case: "mcpServerUpsert",
      value: {
        id,
        name,
        url,
        authType: bearerRef ? McpServerAuthType.BEARER : McpServerAuthType.NONE,
        credentialRef: bearerRef ?? "",
      },
    },
  });
}

async function eventually<T>(fn: () => T | undefined | Promise<T | undefined>): Promise<T> {
  for (let i = 0; ; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    if (i > 500) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Two in-process gateways behind one fake control plane, two real MCP servers, the official MCP client. */
describe("MCP on real gateways", () => {
  const alpha = new FakeMcpServer({ name: "alpha", bearer: UPSTREAM_SECRET });
  const beta = new FakeMcpServer({ name: "beta", jsonResponses: true });
  const keys = {
    tools: mcpKey(true, McpAccessMode.ALLOW_LIST, ["alpha", "beta"], { alpha: ["echo", "add", "count_slowly"] }),
    all: mcpKey(true, McpAccessMode.ALLOW_ALL),
    off: mcpKey(false, McpAccessMode.ALLOW_ALL),
    denyAll: mcpKey(true, McpAccessMode.DENY_ALL),
    allowBeta: mcpKey(true, McpAccessMode.ALLOW_LIST, ["beta"]),
    denyBeta: mcpKey(true, McpAccessMode.DENY_LIST, ["beta"]),
    revoked: mcpKey(true, McpAccessMode.ALLOW_ALL),
  };
  const cp = new FakeControlPlane(
    Object.values(keys).map((k) => k.upsert),
    1,
  );
  const dirs = [tempDir(), tempDir()];
  const gateways: Gateway[] = [];
  const bases: string[] = [];
  let revision = 1;

  beforeAll(async () => {
    await alpha.start();
    await beta.start();
    await cp.start();
    for (const dir of dirs) {
      const config = testConfig(dir.path, cp.url, cp.token, {
        logLevel: "silent",
        mcp: { secrets: new Map([["MCP_SECRET_ALPHA", UPSTREAM_SECRET]]), maxMessageBytes: 64 * 1024 },
      });
      const gw = createGateway(config, { logger: createLogger({ name: "gateway", level: "silent" }) });
      const addr = await gw.start();
      gateways.push(gw);
      bases.push(`http://127.0.0.1:${addr.port}`);
    }
    await eventually(() =>
      gateways.every((g) => g.context.syncState.ready && g.context.syncState.appliedRevision === 1) ? true : undefined,
    );
    cp.push([
      serverChange(++revision, "mcp_alpha", "alpha", alpha.url, "env:MCP_SECRET_ALPHA"),
      serverChange(++revision, "mcp_beta", "beta", beta.url),
    ]);
    await eventually(() => (gateways.every((g) => g.context.mcp.servers.size === 2) ? true : undefined));
  });

  afterAll(async () => {
    for (const g of gateways) await g.stop();
    await cp.stop();
    await alpha.stop();
    await beta.stop();
    for (const d of dirs) d.remove();
  });

  async function connect(gateway: number, path: string, key: TestKey, sessionId?: string) {
    const client = new Client({ name: "test", version: "1" });
    const transport = new StreamableHTTPClientTransport(new URL(`${bases[gateway]}${path}`), {
      requestInit: { headers: { authorization: `Bearer ${key.secret}` } },
      ...(sessionId ? { sessionId } : {}),
    });
    await client.connect(transport);
    return { client, transport };
  }

  const post = (gateway: number, path: string, key: TestKey, body: string, headers: Record<string, string> = {}) =>
    fetch(`${bases[gateway]}${path}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${key.secret}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...headers,
      },
      body,
    });
  const listBody = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" });

  it("lists and calls only the tools of a per-server allow-list; a refused call names the tool, is audited and logged", async () => {
    const { client } = await connect(0, "/mcp/alpha", keys.tools);
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(["add", "count_slowly", "echo"]);
    expect((await client.callTool({ name: "add", arguments: { a: 20, b: 22 } })).content).toEqual([
      { type: "text", text: "42" },
    ]);
    const before = alpha.hits.length;
    await expect(client.callTool({ name: "secret_tool", arguments: {} })).rejects.toMatchObject({
      code: -32001,
      message: expect.stringContaining('tool "secret_tool" on MCP server "alpha" is not allowed'),
    });
    expect(alpha.hits.slice(before).some((h) => h.tool === "secret_tool")).toBe(false);
    await client.close();

    const ctx = gateways[0]!.context;
    await ctx.logWriter.flush();
    const audit = ctx.db.audit.list(1000).filter((a) => a.event === "mcp_denied");
    expect(audit.at(-1)).toMatchObject({
      keyId: keys.tools.upsert.id,
      detail: { code: "mcp_tool_denied", server: "alpha", tool: "secret_tool" },
    });
    const rows = ctx.db.requestLog.list(1000).filter((r) => r.mcp);
    expect(
      rows.some((r) => r.mcp?.server === "alpha" && r.mcp.tool === "add" && r.mcp.outcome === "ok" && r.status === 200),
    ).toBe(true);
    expect(rows.some((r) => r.mcp?.tool === "secret_tool" && r.mcp.outcome === "denied_tool")).toBe(true);
    // Every upstream call carried the credential from the gateway's environment; the client's key never reached the server.
    expect(alpha.hits.every((h) => h.authorization === `Bearer ${UPSTREAM_SECRET}`)).toBe(true);
    const metrics = await ctx.metrics.text();
    expect(metrics).toMatch(
      /tollgate_gateway_mcp_requests_total\{server="alpha",method="tools\/call",outcome="denied_tool"\} 1/,
    );
    expect(metrics).not.toContain("secret_tool");
  });

  it("filters a JSON (not SSE) tools/list answer the same way", async () => {
    const { client } = await connect(0, "/mcp/beta", keys.allowBeta);
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual([
      "add",
      "count_slowly",
      "echo",
      "hold",
      "secret_tool",
      "whoami",
    ]);
    await client.close();
  });

  it.each([
    ["mcp_enabled false", "off", "alpha", 403, "mcp_disabled"],
    ["Deny All", "denyAll", "beta", 403, "mcp_server_denied"],
    ["Allow List without the server", "allowBeta", "alpha", 403, "mcp_server_denied"],
    ["Deny List with the server", "denyBeta", "beta", 403, "mcp_server_denied"],
    ["a server that does not exist", "all", "nosuch", 404, "mcp_server_not_found"],
  ] as const)("%s: %s on /mcp/%s gets %i %s", async (_what, key, server, status, code) => {
    const before = (server === "alpha" ? alpha : beta).hits.length;
    const res = await post(0, `/mcp/${server}`, keys[key], listBody);
    expect(res.status).toBe(status);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(await res.json()).toMatchObject({ error: { code } });
    expect((server === "alpha" ? alpha : beta).hits.length).toBe(before);
  });

  it.each([
    ["Allow All", "all", "alpha"],
    ["Allow List", "allowBeta", "beta"],
    ["Deny List", "denyBeta", "alpha"],
  ] as const)("%s may use %s", async (_what, key, server) => {
    const { client } = await connect(1, `/mcp/${server}`, keys[key]);
    expect((await client.callTool({ name: "whoami", arguments: {} })).content).toEqual([
      { type: "text", text: server },
    ]);
    await client.close();
  });

  it("streams a tool's progress before its result", async () => {
    const { client } = await connect(0, "/mcp/alpha", keys.tools);
    const progress: number[] = [];
    const result = await client.callTool({ name: "count_slowly", arguments: { n: 6 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(progress).toEqual([1, 2, 3, 4, 5, 6]);
    expect(result.content).toEqual([{ type: "text", text: "counted to 6" }]);
    await client.close();
  });

  it("continues a session on the second gateway, for /mcp/{server} and for /mcp", async () => {
    const first = await connect(0, "/mcp/alpha", keys.tools);
    expect((await first.client.callTool({ name: "echo", arguments: { text: "one" } })).content).toEqual([
      { type: "text", text: "one" },
    ]);
    const upstreamSessions = alpha.sessions;
    const moved = await connect(1, "/mcp/alpha", keys.tools, first.transport.sessionId);
    expect((await moved.client.callTool({ name: "echo", arguments: { text: "two" } })).content).toEqual([
      { type: "text", text: "two" },
    ]);
    // The same upstream session served both gateways: no new one was opened.
    expect(alpha.sessions).toBe(upstreamSessions);
    const [onFirst, onSecond] = alpha.hits.slice(-2);
    expect(onSecond?.sessionId).toBe(onFirst?.sessionId);

    const agg = await connect(0, "/mcp", keys.all);
    const aggMoved = await connect(1, "/mcp", keys.all, agg.transport.sessionId);
    expect((await aggMoved.client.callTool({ name: "beta__whoami", arguments: {} })).content).toEqual([
      { type: "text", text: "beta" },
    ]);
  });

  it("aggregates every allowed tool of every allowed server at /mcp", async () => {
    const { client } = await connect(0, "/mcp", keys.tools);
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
    expect((await client.callTool({ name: "alpha__echo", arguments: { text: "via /mcp" } })).content).toEqual([
      { type: "text", text: "via /mcp" },
    ]);
    await expect(client.callTool({ name: "alpha__secret_tool", arguments: {} })).rejects.toMatchObject({
      code: -32001,
    });
    const progress: number[] = [];
    await client.callTool({ name: "alpha__count_slowly", arguments: { n: 3 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(progress).toEqual([1, 2, 3]);
    await client.close();

    const denyBeta = await connect(1, "/mcp", keys.denyBeta);
    expect((await denyBeta.client.listTools()).tools.every((t) => t.name.startsWith("alpha__"))).toBe(true);
    const off = await post(0, "/mcp", keys.off, listBody);
    expect(off.status).toBe(403);
  });

  it("refuses a key revoked mid-session on its next call, on every gateway", async () => {
    const { client, transport } = await connect(0, "/mcp/beta", keys.revoked);
    expect((await client.callTool({ name: "whoami", arguments: {} })).content).toEqual([
      { type: "text", text: "beta" },
    ]);
    const target = ++revision;
    cp.push([upsertChange(target, withFields(keys.revoked.upsert, { status: KeyStatus.REVOKED }))]);
    await eventually(() => (gateways.every((g) => g.context.syncState.appliedRevision >= target) ? true : undefined));
    const before = beta.hits.length;
    for (const i of [0, 1]) {
      const res = await post(
        i,
        "/mcp/beta",
        keys.revoked,
        JSON.stringify({ jsonrpc: "2.0", id: 5, method: "tools/call", params: { name: "whoami" } }),
        {
          "mcp-session-id": transport.sessionId!,
        },
      );
      expect(res.status).toBe(401);
    }
    await expect(client.callTool({ name: "whoami", arguments: {} })).rejects.toThrow();
    expect(beta.hits.length).toBe(before);
  });

  it("answers bad input with a clear error and forwards none of it", async () => {
    const before = alpha.hits.length;
    const cases: Array<[string, number, number]> = [
      ["{oops", 400, -32700],
      [JSON.stringify([{ jsonrpc: "2.0", id: 1, method: "tools/list" }]), 400, -32600],
      [JSON.stringify({ jsonrpc: "2.0", id: 1 }), 400, -32600],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/destroy" }), 200, -32601],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: 7 } }), 400, -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping", params: { pad: "x".repeat(65 * 1024) } }), 413, -32003],
    ];
    for (const path of ["/mcp/alpha", "/mcp"]) {
      for (const [body, status, code] of cases) {
        const res = await post(0, path, keys.tools, body);
        expect(res.status, `${path} ${body.slice(0, 30)}`).toBe(status);
        expect(((await res.json()) as { error: { code: number } }).error.code).toBe(code);
      }
    }
    // Another key's session id, on either gateway.
    const { transport } = await connect(0, "/mcp/alpha", keys.tools);
    const stolen = await post(1, "/mcp/alpha", keys.all, listBody, { "mcp-session-id": transport.sessionId! });
    expect(stolen.status).toBe(404);
    expect(await stolen.json()).toMatchObject({ error: { code: -32004, data: { code: "mcp_session_not_found" } } });
    expect(
      alpha.hits
        .slice(before)
        .filter((h) => h.rpcMethod !== "initialize" && h.rpcMethod !== "notifications/initialized"),
    ).toEqual([]);
    // Unknown paths and methods under /mcp.
    expect((await post(0, "/mcp/alpha/extra", keys.tools, listBody)).status).toBe(404);
    expect(
      (
        await fetch(`${bases[0]}/mcp/alpha`, {
          method: "PUT",
          headers: { authorization: `Bearer ${keys.tools.secret}` },
        })
      ).status,
    ).toBe(405);
    // No key at all: 401 like every route.
    expect((await fetch(`${bases[0]}/mcp/alpha`, { method: "POST", body: listBody })).status).toBe(401);
    // The gateway still serves.
    const { client } = await connect(0, "/mcp/alpha", keys.tools);
    expect((await client.callTool({ name: "echo", arguments: { text: "alive" } })).content).toEqual([
      { type: "text", text: "alive" },
    ]);
  });
});
