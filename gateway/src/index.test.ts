import { afterAll, beforeAll, describe, expect, it } from "vitest";
import BetterSqlite3 from "better-sqlite3";
import { join } from "node:path";
import { createLogger, generateApiKey } from "@tollgate/shared";
import { createGateway, type Gateway, type GatewayConfig } from "./index.js";
import { deleteChange, FakeControlPlane, makeKey, tempDir, upsertChange } from "@tollgate/testkit";
import { testConfig } from "../test/test-config.js";

const silent = () => createLogger({ name: "gateway", level: "silent" });

function configFor(dataDir: string, controlPlaneUrl: string, token: string): GatewayConfig {
  return testConfig(dataDir, controlPlaneUrl, token, {
    logLevel: "silent",
    shutdownGraceMs: 1_000,
    syncHeartbeatIntervalMs: 5_000,
  });
}

// Response bodies are asserted field by field; their static type adds nothing.
const json = (res: Response): Promise<any> => res.json();

async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("gateway with the mock provider and a Connect control plane", () => {
  const dir = tempDir();
  const key = makeKey();
  const cp = new FakeControlPlane([key.upsert], 3);
  let gw: Gateway;
  let base = "";
  let status = "";

  beforeAll(async () => {
    await cp.start();
    gw = createGateway(configFor(dir.path, cp.url, cp.token), { logger: silent() });
    const addr = await gw.start();
    base = `http://127.0.0.1:${addr.port}`;
    status = `http://127.0.0.1:${addr.statusPort}`;
    await eventually(async () => ((await fetch(`${status}/readyz`)).status === 200 ? true : undefined));
  });

  afterAll(async () => {
    await gw?.stop();
    await cp.stop();
    dir.remove();
  });

  const chat = (body: unknown, apiKey = key.secret) =>
    fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  it("is ready from the control plane's snapshot and acknowledges it", async () => {
    const body = await json(await fetch(`${status}/readyz`));
    expect(body).toMatchObject({ ready: true, source: "control_plane", connected: true, applied_revision: 3, keys: 1 });
    expect(cp.subscriptions[0]).toMatchObject({ gatewayName: "test-gateway", lastRevision: 0n });
    expect(cp.subscriptions[0]?.gatewayId).toMatch(/^gw_/);
    await eventually(() => (cp.acks.some((a) => a.revision === 3n && a.error === "") ? true : undefined));
  });

  it("answers a chat completion with the mock's content", async () => {
    const res = await chat({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi there" }] });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toMatch(/^req_/);
    const body = await json(res);
    expect(body).toMatchObject({
      object: "chat.completion",
      model: "gpt-4o-mini",
      system_fingerprint: "tollgate-mock",
    });
    expect(body.id).toMatch(/^chatcmpl-mock-/);
    expect(body.choices[0].message.content).toBe(
      "Hello from Tollgate's built-in mock provider (no OPENAI_API_KEY is set). You said: hi there",
    );
    expect(body.usage.total_tokens).toBeGreaterThan(0);
  });

  it("streams a chat completion as SSE chunks ending with [DONE]", async () => {
    const res = await chat({
      model: "gpt-4o-mini",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "stream please" }],
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const text = await res.text();
    const data = text
      .split("\n")
      .filter((l) => l.startsWith("data: "))
      .map((l) => l.slice(6));
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    const content = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
    expect(content).toBe(
      "Hello from Tollgate's built-in mock provider (no OPENAI_API_KEY is set). You said: stream please",
    );
    expect(chunks.some((c) => c.choices[0]?.finish_reason === "stop")).toBe(true);
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { total_tokens: expect.any(Number) } });
  });

  const wrongKey = generateApiKey().key;

  it("refuses a wrong key with 401 in OpenAI's error shape", async () => {
    const res = await chat({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }, wrongKey);
    expect(res.status).toBe(401);
    expect(await json(res)).toEqual({
      error: {
        message: expect.stringContaining("Invalid API key"),
        type: "invalid_request_error",
        param: null,
        code: "invalid_api_key",
      },
    });
    const missing = await fetch(`${base}/v1/models`);
    expect(missing.status).toBe(401);
    expect((await json(missing)).error.message).toContain("Missing API key");
  });

  it("answers bad input with a clear 4xx", async () => {
    const bad = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key.secret}` },
      body: "{not json",
    });
    expect(bad.status).toBe(400);
    expect((await json(bad)).error.code).toBe("invalid_json");
    const noModel = await chat({ messages: [] });
    expect(noModel.status).toBe(400);
    expect((await json(noModel)).error.param).toBe("model");
    const big = await chat({ model: "m", messages: [{ role: "user", content: "x".repeat(70 * 1024) }] });
    expect(big.status).toBe(413);
    expect((await fetch(`${base}/v1/nope`)).status).toBe(404);
    expect((await fetch(`${base}/v1/chat/completions`)).status).toBe(405);
  });

  it("lists the mock model", async () => {
    const res = await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${key.secret}` } });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ object: "list", data: [{ id: "mock-gpt", owned_by: "tollgate-mock" }] });
  });

  it("applies pushed changes: a new key works, a deleted key stops working", async () => {
    const added = makeKey();
    cp.push([upsertChange(4, added.upsert)]);
    await eventually(async () =>
      (await chat({ model: "m", messages: [{ role: "user", content: "x" }] }, added.secret)).status === 200
        ? true
        : undefined,
    );
    cp.push([deleteChange(5, added.upsert.id)]);
    await eventually(async () =>
      (await chat({ model: "m", messages: [{ role: "user", content: "x" }] }, added.secret)).status === 401
        ? true
        : undefined,
    );
    const ready = await json(await fetch(`${status}/readyz`));
    expect(ready).toMatchObject({ applied_revision: 5, keys: 1 });
    const metrics = await (await fetch(`${status}/metrics`)).text();
    expect(metrics).toMatch(/tollgate_gateway_sync_applied_revision 5/);
    expect(metrics).toMatch(/tollgate_gateway_auth_failures_total\{reason="unknown"\} \d+/);
  });

  it("records requests and denials in SQLite without any key", async () => {
    await gw.stop();
    const db = new BetterSqlite3(join(dir.path, "gateway.db"), { readonly: true });
    try {
      const requests = db.prepare("SELECT * FROM request_log").all() as {
        status: number;
        key_id: string | null;
        stream: number;
      }[];
      expect(requests.some((r) => r.status === 200 && r.key_id === key.upsert.id && r.stream === 1)).toBe(true);
      const denials = db.prepare("SELECT * FROM audit_log WHERE event = 'auth_denied'").all();
      expect(denials.length).toBeGreaterThan(0);
      const everything = JSON.stringify([requests, db.prepare("SELECT * FROM audit_log").all()]);
      for (const secret of [key.secret, wrongKey]) {
        expect(everything).not.toContain(secret);
        expect(everything).not.toContain(secret.slice(13));
      }
    } finally {
      db.close();
    }
  });

  it("serves its cached keys after a restart while the control plane is down", async () => {
    await cp.stop();
    const again = createGateway(configFor(dir.path, cp.url, cp.token), {
      logger: silent(),
      sync: { baseDelayMs: 50, maxDelayMs: 200 },
    });
    try {
      const addr = await again.start();
      const ready = await fetch(`http://127.0.0.1:${addr.statusPort}/readyz`);
      expect(ready.status).toBe(200);
      expect(await json(ready)).toMatchObject({ ready: true, source: "cache", connected: false, applied_revision: 5 });
      const res = await fetch(`http://127.0.0.1:${addr.port}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key.secret}` },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "still here?" }] }),
      });
      expect(res.status).toBe(200);
    } finally {
      await again.stop();
    }
  });
});
