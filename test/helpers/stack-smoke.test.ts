import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabase } from "./database.js";
import { startFakeOpenAI, type FakeOpenAI } from "./fake-openai.js";
import { createTempDir, startControlPlane, startGateway, waitFor, type ControlPlaneProcess, type GatewayProcess, type TempDir } from "./processes.js";

// Proves the process helpers drive the real built services end to end.
describe("helpers against the real services", () => {
  const masterKey = "sk-test-master-key-0123456789abcdefghij";
  const db = testDatabase();
  let tmp: TempDir;
  let fake: FakeOpenAI;
  let cp: ControlPlaneProcess;
  let gw: GatewayProcess;

  beforeAll(async () => {
    tmp = await createTempDir("smoke-");
    fake = await startFakeOpenAI({ expectedApiKey: "sk-upstream" });
    cp = await startControlPlane({ masterKey, dataDir: `${tmp.path}/cp`, databaseUrl: db?.url, databaseSchema: db?.schema });
    const tok = await cp.admin.post("/internal/gateway-tokens", { name: "smoke" });
    expect(tok.status).toBeLessThan(300);
    gw = await startGateway({
      controlPlaneUrl: cp.grpcUrl,
      token: tok.body.token,
      name: "gw-a",
      dataDir: `${tmp.path}/gw`,
      openaiBaseUrl: fake.baseUrl,
      openaiApiKey: "sk-upstream",
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await cp?.stop();
    await fake?.close();
    await db?.drop();
    await tmp?.cleanup();
  });

  it("a key created on the control plane works at the gateway", async () => {
    const ready = await gw.waitForReady();
    expect(ready.ready).toBe(true);
    const team = await cp.admin.post("/internal/teams", { name: "t" });
    const user = await cp.admin.post("/internal/users", { external_id: "alice", team_id: team.body.id });
    const key = await cp.admin.post("/internal/api-keys", { name: "k", user_id: user.body.id });
    expect(key.body.key).toMatch(/^llmp_/);
    const client = new OpenAI({ apiKey: key.body.key, baseURL: gw.baseUrl, maxRetries: 0 });
    const res = await waitFor(() =>
      client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "ping" }] }),
    );
    expect(res.choices[0]?.message.content).toBe("echo: ping");
    const gws = await cp.admin.get("/internal/gateways");
    expect(gws.body.data.some((g: { name: string; connected: boolean }) => g.name === "gw-a" && g.connected)).toBe(true);
    expect(cp.logs()).not.toContain(masterKey);
  });
});
