import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeySyncService, McpServerAuthType, newId, type Change, type SubscribeResponse } from "@tollgate/shared";
import { startTestControlPlane, type TestControlPlane } from "../../test/test-control-plane.js";
import { TEST_MASTER_KEY } from "../../test/test-config.js";

let test: TestControlPlane;
let client: Client<typeof KeySyncService>;
let token: string;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(test.base + path, {
    method,
    headers: { authorization: `Bearer ${TEST_MASTER_KEY}`, "content-type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: await res.json() };
}

async function take(
  it: AsyncIterator<SubscribeResponse>,
  until: (events: SubscribeResponse[]) => boolean,
): Promise<SubscribeResponse[]> {
  const events: SubscribeResponse[] = [];
  while (!until(events)) {
    const next = await it.next();
    if (next.done) break;
    events.push(next.value);
  }
  return events;
}

const changesOf = (events: SubscribeResponse[]): Change[] =>
  events.flatMap((e) => (e.event.case === "changeBatch" ? e.event.value.changes : []));

beforeAll(async () => {
  test = await startTestControlPlane({ heartbeatIntervalMs: 200 });
  client = createClient(KeySyncService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${test.grpcPort}` }));
  token = (await call("POST", "/internal/gateway-tokens", { name: "mcp" })).body.token;
});

afterAll(async () => {
  await test?.stop();
});

describe("/internal/mcp-servers and their sync", () => {
  it("refuses what would store or send a credential in plain text, naming the field", async () => {
    const cases: Array<[unknown, string]> = [
      [{ name: "a", url: "https://mcp.example.com", auth: { type: "bearer", credential: "s3cret" } }, "auth"],
      [{ name: "a", url: "https://user:pw@mcp.example.com/mcp" }, "url"],
      [
        { name: "a", url: "https://mcp.example.com", auth: { type: "bearer", credential_ref: "env:OPENAI_API_KEY" } },
        "auth.credential_ref",
      ],
      [
        {
          name: "a",
          url: "https://mcp.example.com",
          auth: { type: "header", header_name: "mcp-session-id", credential_ref: "env:MCP_SECRET_A" },
        },
        "auth.header_name",
      ],
      [{ name: "Has_Underscore", url: "https://mcp.example.com" }, "name"],
      [{ name: "a", url: "ftp://mcp.example.com" }, "url"],
    ];
    for (const [body, field] of cases) {
      const res = await call("POST", "/internal/mcp-servers", body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(JSON.stringify(res.body), JSON.stringify(body)).toContain(field);
      expect(JSON.stringify(res.body)).not.toContain("s3cret");
    }
  });

  it("sends servers in a snapshot and every change after it, the credential as its reference only", async () => {
    const created = await call("POST", "/internal/mcp-servers", {
      name: "github",
      url: "https://mcp.example.com/mcp",
      auth: { type: "header", header_name: "X-Api-Key", credential_ref: "env:MCP_SECRET_GITHUB" },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: "github",
      auth: { type: "header", header_name: "X-Api-Key", credential_ref: "env:MCP_SECRET_GITHUB" },
    });
    expect(created.body.id).toMatch(/^mcp_/);
    expect(
      (await call("POST", "/internal/mcp-servers", { name: "github", url: "https://other.example.com" })).status,
    ).toBe(409);

    const abort = new AbortController();
    const stream = client
      .subscribe(
        { gatewayId: newId("gw"), gatewayName: "t", version: "t", lastRevision: 0n },
        { headers: { authorization: `Bearer ${token}` }, signal: abort.signal },
      )
      [Symbol.asyncIterator]();
    const snapshot = await take(stream, (ev) => ev.some((e) => e.event.case === "snapshotEnd"));
    const servers = snapshot.flatMap((e) => (e.event.case === "snapshotChunk" ? e.event.value.mcpServers : []));
    expect(servers).toHaveLength(1);
    expect(servers[0]).toMatchObject({
      id: created.body.id,
      name: "github",
      authType: McpServerAuthType.HEADER,
      authHeader: "X-Api-Key",
      credentialRef: "env:MCP_SECRET_GITHUB",
    });

    const patched = await call("PATCH", `/internal/mcp-servers/${created.body.id}`, {
      url: "https://mcp2.example.com/mcp",
      auth: { type: "none" },
    });
    expect(patched.body).toMatchObject({ url: "https://mcp2.example.com/mcp", auth: { type: "none" } });
    let changes = changesOf(await take(stream, (ev) => changesOf(ev).length >= 1));
    expect(changes[0]?.op).toMatchObject({
      case: "mcpServerUpsert",
      value: {
        id: created.body.id,
        url: "https://mcp2.example.com/mcp",
        authType: McpServerAuthType.NONE,
        credentialRef: "",
      },
    });

    expect((await call("DELETE", `/internal/mcp-servers/${created.body.id}`)).body).toEqual({
      id: created.body.id,
      deleted: true,
    });
    changes = changesOf(await take(stream, (ev) => changesOf(ev).length >= 1));
    expect(changes[0]?.op).toMatchObject({ case: "mcpServerDelete", value: { id: created.body.id } });
    abort.abort();

    expect((await call("GET", `/internal/mcp-servers/${created.body.id}`)).status).toBe(404);
    const audit = await call("GET", "/internal/audit-logs?limit=100");
    const actions = JSON.stringify(audit.body);
    expect(actions).toContain("mcp_server.create");
    expect(actions).toContain("mcp_server.delete");
  });

  it("says why it cannot list the tools of a server whose credential the control plane lacks", async () => {
    const created = await call("POST", "/internal/mcp-servers", {
      name: "private",
      url: "http://127.0.0.1:1/mcp",
      auth: { type: "bearer", credential_ref: "env:MCP_SECRET_PRIVATE" },
    });
    const tools = await call("GET", `/internal/mcp-servers/${created.body.id}/tools`);
    expect(tools.status).toBe(409);
    expect(tools.body).toMatchObject({
      error: { code: "mcp_credential_missing", message: expect.stringContaining("MCP_SECRET_PRIVATE") },
    });
    const open = await call("POST", "/internal/mcp-servers", { name: "unreachable", url: "http://127.0.0.1:1/mcp" });
    const unreachable = await call("GET", `/internal/mcp-servers/${open.body.id}/tools`);
    expect(unreachable.status).toBe(502);
    expect(unreachable.body).toMatchObject({ error: { code: "mcp_upstream_unreachable" } });
  });
});
