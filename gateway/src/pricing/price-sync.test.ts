import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@tollgate/shared";
// The in-process control plane: the real admin API, database and sync server.
import { startTestControlPlane, type TestControlPlane } from "../../../control-plane/test/test-control-plane.js";
import { TEST_MASTER_KEY } from "../../../control-plane/test/test-config.js";
import { createGateway, type Gateway } from "../index.js";
import { eventually, FakeOpenAi, tempDir } from "@tollgate/testkit";
import { testConfig } from "../../test/test-config.js";

/** A price override set on the control plane reaches a real gateway's PriceIndex and its request log. */
describe("model prices from the control plane to a gateway", () => {
  let cp: TestControlPlane;
  let gw: Gateway;
  let base: string;
  let apiKey: string;
  const upstream = new FakeOpenAi();
  const dir = tempDir();

  async function admin(method: string, path: string, body?: unknown) {
    const res = await fetch(cp.base + path, {
      method,
      headers: { authorization: `Bearer ${TEST_MASTER_KEY}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  }

  beforeAll(async () => {
    cp = await startTestControlPlane({ heartbeatIntervalMs: 200 });
    await upstream.start();
    const token = (await admin("POST", "/internal/gateway-tokens", { name: "prices" })).body.token as string;
    const user = (await admin("POST", "/internal/users", { external_id: "pricing@example.com" })).body;
    apiKey = (await admin("POST", "/internal/api-keys", { name: "k", user_id: user.id })).body.key as string;
    gw = createGateway(
      testConfig(dir.path, `http://127.0.0.1:${cp.grpcPort}`, token, {
        providers: [
          {
            name: "openai",
            kind: "openai",
            baseUrl: `${upstream.url}/v1`,
            apiKey: "sk-upstream",
            models: [],
            modelPatterns: ["*"],
            timeoutMs: 5_000,
          },
        ],
      }),
      { logger: createLogger({ name: "gateway", level: "silent" }) },
    );
    base = `http://127.0.0.1:${(await gw.start()).port}`;
    await eventually(() => (gw.context.syncState.ready && gw.context.prices.size > 0 ? true : undefined));
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream.stop();
    await cp?.stop();
    dir.remove();
  });

  const chat = (model: string) =>
    fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
    });

  it("the snapshot carries the dataset's defaults, matching dated variants", () => {
    const { prices } = gw.context;
    expect(prices.lookup("openai", "gpt-4o-2024-08-06")).toMatchObject({
      inputUsdPerMtok: 2.5,
      outputUsdPerMtok: 10,
      source: "default",
    });
    expect(prices.lookup("anthropic", "claude-sonnet-4-20250514")).toMatchObject({
      inputUsdPerMtok: 3,
      outputUsdPerMtok: 15,
    });
    expect(prices.lookup("openai", "no-such-model")).toBeUndefined();
  });

  it("an override reaches the PriceIndex and prices the request log; deleting it restores the default", async () => {
    const put = await admin("PUT", "/internal/model-prices/openai/gpt-4o-mini", {
      input_usd_per_mtok: 1000,
      output_usd_per_mtok: 2000,
    });
    expect(put.status).toBe(200);
    await eventually(() =>
      gw.context.prices.lookup("openai", "gpt-4o-mini")?.inputUsdPerMtok === 1000 ? true : undefined,
    );
    expect(gw.context.prices.lookup("openai", "gpt-4o-mini")).toMatchObject({
      outputUsdPerMtok: 2000,
      source: "override",
    });
    // Durable: in the SQLite cache, not just in memory.
    expect(
      gw.context.db.modelPrices.all().find((p) => p.provider === "openai" && p.model === "gpt-4o-mini")
        ?.inputUsdPerMtok,
    ).toBe(1000);

    const res = await chat("gpt-4o-mini");
    expect(res.status).toBe(200);
    await res.text();
    // The fake upstream reports 9 prompt and 5 completion tokens: 9 × 1000 + 5 × 2000 micro-USD.
    const row = await eventually(async () => {
      await gw.context.logWriter.flush();
      return gw.context.db.requestLog.list().find((r) => r.model === "gpt-4o-mini" && r.status === 200);
    });
    expect(row.costUsd).toBeCloseTo(0.019, 9);

    expect((await admin("DELETE", "/internal/model-prices/openai/gpt-4o-mini")).status).toBe(200);
    await eventually(() =>
      gw.context.prices.lookup("openai", "gpt-4o-mini")?.source === "default" ? true : undefined,
    );
    expect(gw.context.prices.lookup("openai", "gpt-4o-mini")?.inputUsdPerMtok).toBe(0.15);
  });

  it("an override of a model the dataset lacks is synced, and its delete removes it", async () => {
    expect(
      (
        await admin("PUT", "/internal/model-prices/openai/acme%2Fin-house:v2*", {
          input_usd_per_mtok: 1,
          output_usd_per_mtok: 2,
        })
      ).status,
    ).toBe(201);
    await eventually(() => gw.context.prices.lookup("openai", "acme/in-house:v2.1"));
    expect((await admin("DELETE", "/internal/model-prices/openai/acme/in-house:v2*")).status).toBe(200);
    await eventually(() => (gw.context.prices.lookup("openai", "acme/in-house:v2.1") === undefined ? true : undefined));
  });
});
