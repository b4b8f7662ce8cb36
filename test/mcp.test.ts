import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  createTempDir,
  startControlPlane,
  startGateway,
  testDatabase,
  type ControlPlaneProcess,
  type GatewayProcess,
  type TempDir,
} from "@tollgate/testkit";
import { FakeMcpServer } from "@tollgate/testkit/mcp";

/**
 * MCP across real processes: a control plane, two gateways of one
 * organization, two real MCP servers (the SDK's McpServer), and the SDK's
 * client through the gateways.
 */
const MASTER_KEY = "sk-mcp-master-key-0123456789abcdefghij";
const UPSTREAM_SECRET = "mcp-upstream-secret-do-not-leak-7f3a9c";

describe("MCP through a fleet of gateways", () => {
  const db = testDatabase("mcp");
  let tmp: TempDir;
  let cp: ControlPlaneProcess;
  let userId: string;
  const alpha = new FakeMcpServer({ name: "alpha", bearer: UPSTREAM_SECRET });
  const beta = new FakeMcpServer({ name: "beta" });
  const fleet: GatewayProcess[] = [];

  const origin = (gw: GatewayProcess) => gw.url;
  const connect = async (gw: GatewayProcess, path: string, key: string, sessionId?: string) => {
    const client = new Client({ name: "test", version: "1" });
    const transport = new StreamableHTTPClientTransport(new URL(`${origin(gw)}${path}`), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
      ...(sessionId ? { sessionId } : {}),
    });
    await client.connect(transport);
    return { client, transport };
  };
  const createKey = async (mcp: Record<string, unknown>) =>
    (await cp.admin.post("/internal/api-keys?wait_for_gateways=5s", { name: "mcp", user_id: userId, ...mcp })).body as {
      id: string;
      key: string;
    };

  beforeAll(async () => {
    tmp = await createTempDir("mcp-");
    await alpha.start();
    await beta.start();
    cp = await startControlPlane({
      masterKey: MASTER_KEY,
      dataDir: join(tmp.path, "cp"),
      ...(db ? { databaseUrl: db.url, databaseSchema: db.schema } : {}),
    });
    userId = (await cp.admin.post("/internal/users", { external_id: "mcp@example.com" })).body.id;
    const token = (await cp.admin.post("/internal/gateway-tokens", { name: "mcp" })).body.token;
    for (const name of ["gw-1", "gw-2"]) {
      fleet.push(
        await startGateway({
          controlPlaneUrl: cp.grpcUrl,
          token,
          name,
          dataDir: join(tmp.path, name),
          env: { MCP_SECRET_ALPHA: UPSTREAM_SECRET },
        }),
      );
    }
    await Promise.all(fleet.map((g) => g.waitForReady(30_000)));
    const a = await cp.admin.post("/internal/mcp-servers", {
      name: "alpha",
      url: alpha.url,
      auth: { type: "bearer", credential_ref: "env:MCP_SECRET_ALPHA" },
    });
    expect(a.status).toBe(201);
    expect((await cp.admin.post("/internal/mcp-servers", { name: "beta", url: beta.url })).status).toBe(201);
  });

  afterAll(async () => {
    await Promise.all(fleet.map((g) => g.stop()));
    await cp?.stop();
    await alpha.stop();
    await beta.stop();
    await tmp?.cleanup();
  });

  it("refuses a raw credential and never returns one", async () => {
    const bad = await cp.admin.post("/internal/mcp-servers", {
      name: "gamma",
      url: alpha.url,
      auth: { type: "bearer", credential: UPSTREAM_SECRET },
    });
    expect(bad.status).toBe(400);
    const creds = await cp.admin.post("/internal/mcp-servers", {
      name: "gamma",
      url: `http://user:${UPSTREAM_SECRET}@127.0.0.1:1/mcp`,
    });
    expect(creds.status).toBe(400);
    const other = await cp.admin.post("/internal/mcp-servers", {
      name: "gamma",
      url: alpha.url,
      auth: { type: "bearer", credential_ref: "env:OPENAI_API_KEY" },
    });
    expect(other.status).toBe(400);
    const list = await cp.admin.get("/internal/mcp-servers");
    expect(JSON.stringify(list.body)).not.toContain(UPSTREAM_SECRET);
    expect(list.body.data.map((s: { name: string }) => s.name)).toEqual(["alpha", "beta"]);
  });

  it("lists the tools of a server for the dashboard's picker", async () => {
    const list = await cp.admin.get("/internal/mcp-servers");
    const betaId = list.body.data.find((s: { name: string }) => s.name === "beta").id;
    const tools = await cp.admin.get(`/internal/mcp-servers/${betaId}/tools`);
    expect(tools.status).toBe(200);
    expect(tools.body.data.map((t: { name: string }) => t.name).sort()).toEqual([
      "add",
      "count_slowly",
      "echo",
      "hold",
      "secret_tool",
      "whoami",
    ]);
  });

  it("enforces a tool allow-list on every gateway, and a session moves between gateways", async () => {
    const key = await createKey({
      mcp_enabled: true,
      mcp_access_mode: "allow_list",
      mcp_servers: ["alpha"],
      mcp_tools: { alpha: ["echo", "count_slowly"] },
    });
    const { client, transport } = await connect(fleet[0]!, "/mcp/alpha", key.key);
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(["count_slowly", "echo"]);
    await expect(client.callTool({ name: "add", arguments: { a: 1, b: 2 } })).rejects.toMatchObject({
      code: -32001,
      message: expect.stringContaining('"add"'),
    });

    // The same session, continued on the second gateway.
    const moved = await connect(fleet[1]!, "/mcp/alpha", key.key, transport.sessionId);
    expect((await moved.client.callTool({ name: "echo", arguments: { text: "moved" } })).content).toEqual([
      { type: "text", text: "moved" },
    ]);
    const progress: number[] = [];
    await moved.client.callTool({ name: "count_slowly", arguments: { n: 4 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(progress).toEqual([1, 2, 3, 4]);
    expect(
      alpha.hits.filter((h) => h.sessionId !== null).every((h) => h.authorization === `Bearer ${UPSTREAM_SECRET}`),
    ).toBe(true);

    const denied = await fetch(`${origin(fleet[1]!)}/mcp/beta`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${key.key}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(denied.status).toBe(403);
    expect(await denied.json()).toMatchObject({ error: { code: "mcp_server_denied" } });
    await moved.client.close();
    await client.close();
  });

  it("refuses a key revoked mid-session on its next call, on every gateway", async () => {
    const key = await createKey({ mcp_enabled: true, mcp_access_mode: "allow_all" });
    const { client, transport } = await connect(fleet[0]!, "/mcp", key.key);
    expect((await client.callTool({ name: "beta__whoami", arguments: {} })).content).toEqual([
      { type: "text", text: "beta" },
    ]);
    expect((await cp.admin.post(`/internal/api-keys/${key.id}/revoke?wait_for_gateways=5s`)).status).toBe(200);
    for (const gw of fleet) {
      const res = await fetch(`${origin(gw)}/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${key.key}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-session-id": transport.sessionId!,
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 9,
          method: "tools/call",
          params: { name: "beta__whoami", arguments: {} },
        }),
      });
      expect(res.status).toBe(401);
    }
    await expect(client.callTool({ name: "beta__whoami", arguments: {} })).rejects.toThrow();
    await client.close().catch(() => undefined);
  });

  it("counts MCP requests against the key's requests-per-minute limit", async () => {
    const key = await createKey({ mcp_enabled: true, mcp_access_mode: "allow_all", rpm_limit: 3 });
    const call = (gw: GatewayProcess, id: number) =>
      fetch(`${origin(gw)}/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${key.key}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: JSON.stringify({ jsonrpc: "2.0", id, method: "ping" }),
      });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await call(fleet[0]!, i)).status);
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses.slice(3)).toEqual([429, 429]);
  });

  it("holds a key to its concurrency limit: a second call while one runs is refused", async () => {
    const key = await createKey({ mcp_enabled: true, mcp_access_mode: "allow_all", max_concurrent_requests: 1 });
    const callHold = () =>
      fetch(`${origin(fleet[0]!)}/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${key.key}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "tools/call",
          params: { name: "beta__hold", arguments: {} },
        }),
      });
    const first = callHold();
    await beta.untilHeld(1);
    const second = await callHold();
    expect(second.status).toBe(429);
    expect(((await second.json()) as { error: { message: string } }).error.message).toContain("concurrent requests");
    beta.release();
    const answered = await first;
    expect(answered.status).toBe(200);
    expect(await answered.text()).toContain("released");
    // The slot is free again.
    const third = callHold();
    await beta.untilHeld(1);
    beta.release();
    expect((await third).status).toBe(200);
  });

  it("refuses a key with mcp_enabled false", async () => {
    const key = await createKey({ mcp_enabled: false });
    for (const path of ["/mcp", "/mcp/beta"]) {
      const res = await fetch(`${origin(fleet[0]!)}${path}`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${key.key}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } },
        }),
      });
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ error: { code: "mcp_disabled" } });
    }
  });

  it("keeps the upstream credential out of every log and database file", async () => {
    for (const gw of fleet) await gw.stop();
    for (const dir of [join(tmp.path, "cp"), ...fleet.map((_, i) => join(tmp.path, `gw-${i + 1}`))]) {
      for (const file of readdirSync(dir, { recursive: true, withFileTypes: true })) {
        if (!file.isFile()) continue;
        const text = readFileSync(join(file.parentPath, file.name)).toString("latin1");
        expect(text.includes(UPSTREAM_SECRET), `${file.name} holds the upstream credential`).toBe(false);
      }
    }
  });
});
