import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabase } from "@tollgate/testkit";
import { startFakeOpenAI, type FakeOpenAI } from "@tollgate/testkit";
import {
  createTempDir,
  startControlPlane,
  startGateway,
  waitFor,
  type ControlPlaneProcess,
  type GatewayProcess,
  type TempDir,
} from "@tollgate/testkit";

/**
 * Key lifecycle and scopes across real processes: one control plane, two
 * organizations, a gateway per organization plus a second gateway of the
 * default organization, the official openai client as caller.
 */
const MASTER_KEY = "sk-lifecycle-master-key-0123456789abcdefgh";
const UPSTREAM_KEY = "sk-upstream-lifecycle-0123456789";

describe("key lifecycle and scopes on every gateway", () => {
  const db = testDatabase("lifecycle");
  let tmp: TempDir;
  let upstream: FakeOpenAI;
  let cp: ControlPlaneProcess;
  let acmeOrg: string;
  let defaultUser: string;
  let acmeUser: string;
  const fleet: GatewayProcess[] = []; // default organization
  let acmeGateway: GatewayProcess;
  const acme = () => ({ "tollgate-organization": acmeOrg });

  const chat = async (gw: GatewayProcess, key: string, model = "gpt-4o-mini") => {
    const res = await fetch(`${gw.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
    });
    const body = (await res.json().catch(() => null)) as any;
    return { status: res.status, body };
  };
  const everywhere = async (key: string, status: number, gws: GatewayProcess[] = fleet, model?: string) => {
    for (const gw of gws) {
      await waitFor(async () => (await chat(gw, key, model)).status === status, {
        timeoutMs: 5000,
        intervalMs: 5,
        message: `expected ${status} on ${gw.port}`,
      });
    }
  };

  beforeAll(async () => {
    tmp = await createTempDir("lifecycle-");
    upstream = await startFakeOpenAI({ expectedApiKey: UPSTREAM_KEY });
    cp = await startControlPlane({
      masterKey: MASTER_KEY,
      dataDir: join(tmp.path, "cp"),
      ...(db ? { databaseUrl: db.url, databaseSchema: db.schema } : {}),
    });
    acmeOrg = (await cp.admin.post("/internal/orgs", { name: "acme" })).body.id;
    defaultUser = (await cp.admin.post("/internal/users", { external_id: "alice@example.com" })).body.id;
    acmeUser = (await cp.admin.request("POST", "/internal/users", { external_id: "wile@acme.test" }, acme())).body.id;
    const defaultToken = (await cp.admin.post("/internal/gateway-tokens", { name: "default" })).body.token;
    const acmeToken = (await cp.admin.request("POST", "/internal/gateway-tokens", { name: "acme" }, acme())).body.token;
    const gw = (name: string, token: string) =>
      startGateway({
        controlPlaneUrl: cp.grpcUrl,
        token,
        name,
        dataDir: join(tmp.path, name),
        openaiBaseUrl: upstream.baseUrl,
        openaiApiKey: UPSTREAM_KEY,
      });
    fleet.push(await gw("gw-1", defaultToken), await gw("gw-2", defaultToken));
    acmeGateway = await gw("gw-acme", acmeToken);
    await Promise.all([...fleet, acmeGateway].map((g) => g.waitForReady(30_000)));
  });

  afterAll(async () => {
    await Promise.all([...fleet, acmeGateway].map((g) => g?.stop()));
    await cp?.stop();
    await upstream?.close();
    await db?.drop();
    await tmp?.cleanup();
  });

  it("a key of one organization never authenticates at another organization's gateway", async () => {
    const acmeKey = (
      await cp.admin.request("POST", "/internal/api-keys", { name: "acme-key", user_id: acmeUser }, acme())
    ).body.key;
    const defaultKey = (await cp.admin.post("/internal/api-keys", { name: "default-key", user_id: defaultUser })).body
      .key;
    await everywhere(acmeKey, 200, [acmeGateway]);
    await everywhere(defaultKey, 200);
    for (const gw of fleet) expect((await chat(gw, acmeKey)).status).toBe(401);
    expect((await chat(acmeGateway, defaultKey)).status).toBe(401);
  });

  it("deactivate stops a key on every gateway and activate brings it back", async () => {
    const k = (await cp.admin.post("/internal/api-keys", { name: "toggle", user_id: defaultUser })).body;
    await everywhere(k.key, 200);
    await cp.admin.post(`/internal/api-keys/${k.id}/deactivate`);
    await everywhere(k.key, 401);
    const refused = await chat(fleet[0]!, k.key);
    expect(refused.body.error.code).toBe("invalid_api_key");
    expect(refused.body.error.message).toContain("inactive");
    await cp.admin.post(`/internal/api-keys/${k.id}/activate`);
    await everywhere(k.key, 200);
  });

  it("rotation with a grace period: both secrets work, then the old one stops by the clock", async () => {
    const k = (await cp.admin.post("/internal/api-keys", { name: "rotating", user_id: defaultUser })).body;
    await everywhere(k.key, 200);
    const rotated = (
      await cp.admin.post(`/internal/api-keys/${k.id}/rotate?wait_for_gateways=5s`, { grace_seconds: 2 })
    ).body;
    expect(rotated.sync.complete).toBe(true);
    for (const gw of fleet) {
      expect((await chat(gw, rotated.key)).status).toBe(200);
      expect((await chat(gw, k.key)).status).toBe(200);
    }
    await new Promise((r) => setTimeout(r, 2200));
    for (const gw of fleet) {
      expect((await chat(gw, k.key)).status).toBe(401);
      expect((await chat(gw, rotated.key)).status).toBe(200);
    }
    // Without grace, the old secret stops at once.
    const again = (await cp.admin.post(`/internal/api-keys/${k.id}/rotate`, {})).body;
    await everywhere(rotated.key, 401);
    await everywhere(again.key, 200);
  });

  it("an expired key is refused from the second it expires, without waiting for a sync", async () => {
    const expiresAt = new Date(Date.now() + 2500).toISOString();
    const k = (
      await cp.admin.post("/internal/api-keys", { name: "short", user_id: defaultUser, expires_at: expiresAt })
    ).body;
    await everywhere(k.key, 200);
    await new Promise((r) => setTimeout(r, Date.parse(expiresAt) - Date.now() + 50));
    for (const gw of fleet) {
      const res = await chat(gw, k.key);
      expect(res.status).toBe(401);
      expect(res.body.error.message).toContain("expired");
    }
    expect((await cp.admin.get(`/internal/api-keys/${k.id}`)).body.status).toBe("expired");
  });

  it("allowed models and providers answer 403 naming the rule, through the openai client", async () => {
    const k = (
      await cp.admin.post("/internal/api-keys", { name: "scoped", user_id: defaultUser, allowed_models: ["gpt-4o*"] })
    ).body;
    await everywhere(k.key, 200);
    const client = new OpenAI({ apiKey: k.key, baseURL: fleet[1]!.baseUrl, maxRetries: 0 });
    const ok = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "in scope" }],
    });
    expect(ok.choices[0]?.message.content).toBe("echo: in scope");
    const err = await client.chat.completions
      .create({ model: "gpt-3.5-turbo", messages: [{ role: "user", content: "out of scope" }] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((err as InstanceType<typeof OpenAI.PermissionDeniedError>).code).toBe("model_not_allowed");
    expect((err as Error).message).toContain("gpt-4o*");

    const provider = (
      await cp.admin.post("/internal/api-keys", {
        name: "anthropic-only",
        user_id: defaultUser,
        allowed_providers: ["anthropic"],
      })
    ).body;
    await everywhere(provider.key, 403);
    const denied = await chat(fleet[0]!, provider.key);
    expect(denied.body.error.code).toBe("provider_not_allowed");

    // A PATCH widening the scope reaches every gateway.
    await cp.admin.patch(`/internal/api-keys/${k.id}`, { allowed_models: [] });
    await everywhere(k.key, 200, fleet, "gpt-3.5-turbo");
  });

  it("the IP allowlist is enforced on the client's address", async () => {
    const elsewhere = (
      await cp.admin.post("/internal/api-keys", {
        name: "office-only",
        user_id: defaultUser,
        ip_allowlist: ["10.9.9.0/24"],
      })
    ).body;
    await everywhere(elsewhere.key, 403);
    expect((await chat(fleet[0]!, elsewhere.key)).body.error.code).toBe("ip_not_allowed");
    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    const spoofed = await fetch(`${fleet[0]!.baseUrl}/chat/completions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${elsewhere.key}`,
        "content-type": "application/json",
        "x-forwarded-for": "10.9.9.7",
      },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(spoofed.status).toBe(403);
    const local = (
      await cp.admin.post("/internal/api-keys", {
        name: "loopback",
        user_id: defaultUser,
        ip_allowlist: ["127.0.0.1", "::1"],
      })
    ).body;
    await everywhere(local.key, 200);
  });

  it("ephemeral tokens work offline on every gateway through the openai client and die with their parent", async () => {
    const parent = (await cp.admin.post("/internal/api-keys", { name: "parent", user_id: defaultUser })).body;
    const issued = await cp.admin.post(`/internal/api-keys/${parent.id}/ephemeral-tokens`, { ttl_seconds: 300 });
    expect(issued.status).toBe(201);
    const token: string = issued.body.token;
    await everywhere(token, 200);
    const res = await new OpenAI({ apiKey: token, baseURL: fleet[0]!.baseUrl, maxRetries: 0 }).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "ephemeral" }],
    });
    expect(res.choices[0]?.message.content).toBe("echo: ephemeral");
    // Not valid in another organization.
    expect((await chat(acmeGateway, token)).status).toBe(401);
    // Tampered tokens fail the signature.
    const dot = token.lastIndexOf(".");
    const tampered = token.slice(0, dot + 1) + (token[dot + 1] === "A" ? "B" : "A") + token.slice(dot + 2);
    expect((await chat(fleet[0]!, tampered)).status).toBe(401);
    await cp.admin.post(`/internal/api-keys/${parent.id}/deactivate`);
    await everywhere(token, 401);
    await cp.admin.post(`/internal/api-keys/${parent.id}/activate`);
    await everywhere(token, 200);
    await cp.admin.delete(`/internal/api-keys/${parent.id}`);
    await everywhere(token, 401);
  });

  it("secrets appear in no log: keys, rotated secrets and tokens stay out of every process's output", async () => {
    const k = (await cp.admin.post("/internal/api-keys", { name: "quiet", user_id: defaultUser })).body;
    const token = (await cp.admin.post(`/internal/api-keys/${k.id}/ephemeral-tokens`, {})).body.token;
    await everywhere(k.key, 200);
    await everywhere(token, 200);
    for (const proc of [cp, ...fleet, acmeGateway]) {
      expect(proc.logs()).not.toContain(k.key);
      expect(proc.logs()).not.toContain(token);
      expect(proc.logs()).not.toContain(MASTER_KEY);
      expect(proc.logs()).not.toContain(UPSTREAM_KEY);
    }
  });
});
