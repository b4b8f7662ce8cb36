import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { createGateway, type Gateway } from "../index.js";
import type { ProviderConfig } from "../providers/provider-config.js";
import {
  capturedLogger,
  eventually,
  FAKE_ANTHROPIC_CACHE,
  FAKE_ANTHROPIC_USAGE,
  FAKE_OPENAI_CACHED_TOKENS,
  FAKE_OPENAI_HEADERS,
  FAKE_OPENAI_USAGE,
  FakeAnthropic,
  FakeControlPlane,
  FakeOpenAi,
  makeKey,
  tempDir,
} from "@tollgate/testkit";
import { testConfig } from "../../test/test-config.js";

const KEYS = {
  anthropic: "sk-ant-fidelity-secret-1",
  openai: "sk-openai-fidelity-secret-2",
  azure: "azure-fidelity-secret-3",
  gemini: "gemini-fidelity-secret-4",
  backup: "sk-backup-fidelity-secret-5",
};

async function closedPortUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  await new Promise<void>((r) => s.close(() => r()));
  return url;
}

describe("provider kinds, prefixes, fallbacks and wire fidelity", () => {
  const dir = tempDir();
  const key = makeKey();
  const noBackup = makeKey({ allowedProviders: ["flaky"] });
  const cp = new FakeControlPlane([key.upsert, noBackup.upsert], 1);
  const anthropicUp = new FakeAnthropic(KEYS.anthropic);
  const openaiUp = new FakeOpenAi();
  const azureUp = new FakeOpenAi();
  const geminiUp = new FakeOpenAi();
  const flakyUp = new FakeOpenAi();
  const backupUp = new FakeOpenAi();
  const log = capturedLogger();
  let gw: Gateway;
  let base = "";
  let openai: OpenAI;
  let anthropic: Anthropic;

  beforeAll(async () => {
    await Promise.all([
      cp.start(),
      anthropicUp.start(),
      openaiUp.start(),
      azureUp.start(),
      geminiUp.start(),
      flakyUp.start(),
      backupUp.start(),
    ]);
    const common = { models: [] as string[], modelPatterns: [] as string[], timeoutMs: 2_000 };
    const providers: ProviderConfig[] = [
      {
        ...common,
        name: "anthropic",
        kind: "anthropic",
        baseUrl: anthropicUp.url,
        apiKey: KEYS.anthropic,
        modelPatterns: ["claude-*"],
        modelPrefixes: ["anthropic/"],
      },
      {
        ...common,
        name: "azure",
        kind: "azure-openai",
        baseUrl: azureUp.url,
        apiKey: KEYS.azure,
        apiVersion: "2024-10-21",
        deployments: { "gpt-4o-azure": "prod-4o" },
        models: ["gpt-4o-azure"],
        modelPatterns: ["azure-*"],
      },
      {
        ...common,
        name: "azure-v1",
        kind: "azure-openai",
        baseUrl: azureUp.url,
        apiKey: KEYS.azure,
        apiVersion: "v1",
        deployments: { "gpt-v1": "dep-v1" },
        models: ["gpt-v1"],
      },
      {
        ...common,
        name: "gemini",
        kind: "gemini",
        baseUrl: `${geminiUp.url}/v1beta/openai`,
        apiKey: KEYS.gemini,
        modelPatterns: ["gemini-*"],
        modelPrefixes: ["google/"],
      },
      {
        ...common,
        name: "flaky",
        kind: "openai",
        baseUrl: `${flakyUp.url}/v1`,
        apiKey: KEYS.openai,
        modelPatterns: ["flaky-*"],
        fallbacks: ["backup"],
      },
      {
        ...common,
        name: "dead",
        kind: "openai",
        baseUrl: await closedPortUrl(),
        apiKey: KEYS.openai,
        models: ["dead-model", "dead-capped"],
        modelFallbacks: { "dead-model": ["backup"], "dead-capped": ["dead", "backup"] },
        maxAttempts: 2,
      },
      {
        ...common,
        name: "backup",
        kind: "openai",
        baseUrl: `${backupUp.url}/v1`,
        apiKey: KEYS.backup,
        models: ["backup-only"],
      },
      {
        ...common,
        name: "openai",
        kind: "openai",
        baseUrl: `${openaiUp.url}/v1`,
        apiKey: KEYS.openai,
        modelPatterns: ["gpt-*"],
      },
    ];
    gw = createGateway(testConfig(dir.path, cp.url, cp.token, { logLevel: "debug", providers }), {
      logger: log.logger,
    });
    base = `http://127.0.0.1:${(await gw.start()).port}`;
    await eventually(() => (gw.context.syncState.ready ? true : undefined));
    openai = new OpenAI({ apiKey: key.secret, baseURL: `${base}/v1`, maxRetries: 0 });
    anthropic = new Anthropic({ apiKey: key.secret, baseURL: base, maxRetries: 0 });
  });

  afterAll(async () => {
    await gw?.stop();
    await Promise.all([
      cp.stop(),
      anthropicUp.stop(),
      openaiUp.stop(),
      azureUp.stop(),
      geminiUp.stop(),
      flakyUp.stop(),
      backupUp.stop(),
    ]);
    dir.remove();
  });

  const logged = (requestId: string | null | undefined) =>
    eventually(async () => {
      await gw.context.logWriter.flush();
      return gw.context.db.requestLog.list().find((r) => r.requestId === requestId);
    });
  const metrics = () => gw.context.metrics.text();
  const chat = (model: string, client = openai) =>
    client.chat.completions.create({ model, messages: [{ role: "user", content: "x" }] }).withResponse();

  it("calls an Azure deployment by its path, api-version and api-key header, never with a Bearer credential", async () => {
    const { data, response } = await chat("gpt-4o-azure");
    expect(data.choices[0]!.message.content).toBe("Hello from the fake OpenAI.");
    const seen = azureUp.seen.at(-1)!;
    expect(seen.path).toBe("/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21");
    expect(seen.headers["api-key"]).toBe(KEYS.azure);
    expect(seen.headers.authorization).toBeUndefined();
    // Azure ignores the body's model in this style: the client's bytes go as they are.
    expect(JSON.parse(seen.body)).toMatchObject({ model: "gpt-4o-azure" });
    expect(await logged(response.headers.get("x-request-id"))).toMatchObject({
      provider: "azure",
      status: 200,
      totalTokens: 14,
    });

    // A model the map does not name is its own deployment.
    const emb = await openai.embeddings.create({ model: "azure-embed", input: "hi" });
    expect(emb.data[0]!.embedding).toEqual([0.25, -0.5, 1]);
    expect(azureUp.seen.at(-1)!.path).toBe("/openai/deployments/azure-embed/embeddings?api-version=2024-10-21");

    // An unmapped model that is no valid deployment name is refused, never put into the path.
    const calls = azureUp.seen.length;
    const bad = await chat("azure-x/../../admin").catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.NotFoundError);
    expect((bad as InstanceType<typeof OpenAI.NotFoundError>).message).toContain("deployment name");
    expect(azureUp.seen.length).toBe(calls);
  });

  it("calls Azure's v1 API with the deployment as the body's model", async () => {
    await chat("gpt-v1");
    const seen = azureUp.seen.at(-1)!;
    expect(seen.path).toBe("/openai/v1/chat/completions");
    expect(seen.headers["api-key"]).toBe(KEYS.azure);
    expect(JSON.parse(seen.body)).toMatchObject({ model: "dep-v1", messages: [{ role: "user", content: "x" }] });
  });

  it("routes Gemini models to its OpenAI-compatible endpoint for chat and embeddings, and refuses other endpoints", async () => {
    const { response } = await chat("gemini-2.0-flash");
    let seen = geminiUp.seen.at(-1)!;
    expect(seen.path).toBe("/v1beta/openai/chat/completions");
    expect(seen.headers.authorization).toBe(`Bearer ${KEYS.gemini}`);
    expect(await logged(response.headers.get("x-request-id"))).toMatchObject({
      provider: "gemini",
      model: "gemini-2.0-flash",
      promptTokens: 9,
    });
    await openai.embeddings.create({ model: "gemini-embedding-001", input: ["a", "b"] });
    seen = geminiUp.seen.at(-1)!;
    expect(seen.path).toBe("/v1beta/openai/embeddings");
    const err = await openai.responses.create({ model: "gemini-2.0-flash", input: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe("unsupported_endpoint");
  });

  it("strips a routing prefix from the model sent upstream, keeping the rest of the body, and logs the client's model", async () => {
    const { data, response } = await anthropic.messages
      .create({
        model: "anthropic/claude-test-1",
        max_tokens: 64,
        system: "be brief",
        messages: [{ role: "user", content: "Hi" }],
      })
      .withResponse();
    const sent = JSON.parse(anthropicUp.seen.at(-1)!.body) as Record<string, unknown>;
    expect(sent).toEqual({
      model: "claude-test-1",
      max_tokens: 64,
      system: "be brief",
      messages: [{ role: "user", content: "Hi" }],
    });
    // The upstream echoes the name it was sent.
    expect(data.model).toBe("claude-test-1");
    expect(await logged(response.headers.get("x-request-id"))).toMatchObject({
      model: "anthropic/claude-test-1",
      provider: "anthropic",
      status: 200,
    });

    await chat("google/gemini-2.5-pro");
    expect(JSON.parse(geminiUp.seen.at(-1)!.body)).toMatchObject({ model: "gemini-2.5-pro" });
  });

  it("falls back to the next provider on a 500 and records both attempts", async () => {
    flakyUp.failWith = 500;
    try {
      const backupBefore = backupUp.seen.length;
      const { data, response } = await chat("flaky-1");
      expect(data.choices[0]!.message.content).toBe("Hello from the fake OpenAI.");
      expect(backupUp.seen.length).toBe(backupBefore + 1);
      expect(backupUp.seen.at(-1)!.headers.authorization).toBe(`Bearer ${KEYS.backup}`);
      const row = await logged(response.headers.get("x-request-id"));
      expect(row).toMatchObject({ status: 200, provider: "backup", error: null, totalTokens: 14 });
      expect(row.attempts).toEqual([
        { provider: "flaky", status: 500, latencyMs: expect.any(Number) },
        { provider: "backup", status: 200, latencyMs: expect.any(Number) },
      ]);
      const text = await metrics();
      expect(text).toMatch(/^tollgate_gateway_upstream_fallbacks_total\{provider="flaky",reason="http_5xx"\} 1$/m);
      // The replaced answer counts by its status class too, under the provider that gave it.
      expect(text).toMatch(/^tollgate_gateway_upstream_responses_total\{provider="flaky",status_class="5xx"\} 1$/m);
      expect(text).toMatch(
        /^tollgate_gateway_upstream_responses_total\{provider="backup",status_class="2xx"\} [1-9]\d*$/m,
      );
    } finally {
      flakyUp.failWith = undefined;
    }
  });

  it("does not fall back on a client error, nor to a provider the key may not use", async () => {
    flakyUp.failWith = 400;
    const backupBefore = backupUp.seen.length;
    try {
      const err = (await chat("flaky-2").catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      flakyUp.failWith = 500;
      const denied = (await chat(
        "flaky-3",
        new OpenAI({ apiKey: noBackup.secret, baseURL: `${base}/v1`, maxRetries: 0 }),
      ).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
      expect(denied).toBeInstanceOf(OpenAI.InternalServerError);
      expect(backupUp.seen.length).toBe(backupBefore);
      expect((await logged(denied.headers?.get("x-request-id"))).attempts).toEqual([
        { provider: "flaky", status: 500, latencyMs: expect.any(Number) },
      ]);
    } finally {
      flakyUp.failWith = undefined;
    }
  });

  it("falls back after a connection failure, within max_attempts", async () => {
    const { response } = await chat("dead-model");
    expect((await logged(response.headers.get("x-request-id"))).attempts).toEqual([
      { provider: "dead", reason: "connect", latencyMs: expect.any(Number) },
      { provider: "backup", status: 200, latencyMs: expect.any(Number) },
    ]);
    // Chain [dead, dead, backup] capped at 2 calls: the second failure is the answer.
    const backupBefore = backupUp.seen.length;
    const err = (await chat("dead-capped").catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(502);
    expect(backupUp.seen.length).toBe(backupBefore);
    expect(await logged(err.headers?.get("x-request-id"))).toMatchObject({
      error: "upstream_connect",
      attempts: [
        { provider: "dead", reason: "connect", latencyMs: expect.any(Number) },
        { provider: "dead", reason: "connect", latencyMs: expect.any(Number) },
      ],
    });
    expect(await metrics()).toMatch(
      /^tollgate_gateway_upstream_fallbacks_total\{provider="dead",reason="connect"\} 2$/m,
    );
  });

  it("never falls back once a stream has started: the client's stream is cut", async () => {
    const backupBefore = backupUp.seen.length;
    const stream = await openai.chat.completions
      .create({ model: "flaky-stream-break", stream: true, messages: [{ role: "user", content: "x" }] })
      .withResponse();
    const read = async () => {
      for await (const _ of stream.data) void _;
    };
    await expect(read()).rejects.toThrow();
    expect(backupUp.seen.length).toBe(backupBefore);
    const row = await logged(stream.response.headers.get("x-request-id"));
    expect(row.attempts).toEqual([{ provider: "flaky", status: 200, latencyMs: expect.any(Number) }]);
  });

  it("logs prompt-cache reads and writes apart from the prompt tokens", async () => {
    const msg = await anthropic.messages
      .create({ model: "claude-cached", max_tokens: 8, messages: [{ role: "user", content: "x" }] })
      .withResponse();
    expect(await logged(msg.response.headers.get("x-request-id"))).toMatchObject({
      promptTokens: FAKE_ANTHROPIC_USAGE.message.input_tokens,
      cacheReadTokens: FAKE_ANTHROPIC_CACHE.cache_read_input_tokens,
      cacheWriteTokens: FAKE_ANTHROPIC_CACHE.cache_creation_input_tokens,
    });
    const streamed = await anthropic.messages
      .create({ model: "claude-cached", max_tokens: 8, stream: true, messages: [{ role: "user", content: "x" }] })
      .withResponse();
    for await (const _ of streamed.data) void _;
    expect(await logged(streamed.response.headers.get("x-request-id"))).toMatchObject({
      promptTokens: FAKE_ANTHROPIC_USAGE.stream.input_tokens,
      completionTokens: FAKE_ANTHROPIC_USAGE.stream.output_tokens,
      cacheReadTokens: FAKE_ANTHROPIC_CACHE.cache_read_input_tokens,
      cacheWriteTokens: FAKE_ANTHROPIC_CACHE.cache_creation_input_tokens,
    });
    const cached = await chat("gpt-cached");
    expect(await logged(cached.response.headers.get("x-request-id"))).toMatchObject({
      promptTokens: FAKE_OPENAI_USAGE.prompt_tokens,
      cacheReadTokens: FAKE_OPENAI_CACHED_TOKENS,
      cacheWriteTokens: null,
    });
    const plain = await chat("gpt-4o-mini");
    expect(await logged(plain.response.headers.get("x-request-id"))).toMatchObject({
      cacheReadTokens: null,
      cacheWriteTokens: null,
    });
  });

  it("passes the upstream's request id, timing and Anthropic rate-limit headers, never its x-ratelimit-*, account or cookie", async () => {
    const { response } = await chat("gpt-4o-mini");
    expect(response.headers.get("x-upstream-request-id")).toBe(FAKE_OPENAI_HEADERS["x-request-id"]);
    expect(response.headers.get("openai-processing-ms")).toBe(FAKE_OPENAI_HEADERS["openai-processing-ms"]);
    // x-request-id stays the gateway's: the key into its request log.
    expect(response.headers.get("x-request-id")).toMatch(/^req_/);
    expect(response.headers.get("x-request-id")).not.toBe(FAKE_OPENAI_HEADERS["x-request-id"]);
    for (const name of [
      "x-ratelimit-limit-requests",
      "x-ratelimit-remaining-requests",
      "openai-organization",
      "set-cookie",
    ]) {
      expect(response.headers.get(name), name).toBeNull();
    }
    const msg = await anthropic.messages
      .create({ model: "claude-test-1", max_tokens: 8, messages: [{ role: "user", content: "x" }] })
      .withResponse();
    expect(msg.response.headers.get("request-id")).toBe("req_fake_anthropic_1");
    // Issue 21: the upstream account's rate limits stay behind the gateway (the key's own are its to send).
    expect(msg.response.headers.get("anthropic-ratelimit-requests-remaining")).toBeNull();
  });

  it("asks the upstream for stream usage the client did not ask for, logs it, and cuts only that chunk from the stream", async () => {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key.secret}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-4o-mini",
        stream: true,
        stream_options: { include_obfuscation: false },
        messages: [{ role: "user", content: "x" }],
      }),
    });
    const text = await res.text();
    const sent = JSON.parse(openaiUp.seen.at(-1)!.body) as Record<string, unknown>;
    // The client's own stream_options are kept, include_usage added.
    expect(sent.stream_options).toEqual({ include_obfuscation: false, include_usage: true });
    const usageEvent = openaiUp.lastStream.split("\n\n").find((e) => e.includes('"choices":[]'));
    expect(usageEvent).toBeDefined();
    // Every other byte passes unchanged.
    expect(text).toBe(openaiUp.lastStream.replace(`${usageEvent}\n\n`, ""));
    expect(await logged(res.headers.get("x-request-id"))).toMatchObject({
      stream: true,
      ...{ promptTokens: 9, completionTokens: 5, totalTokens: 14 },
    });

    // Through the SDK: no chunk without choices reaches a client that did not ask.
    const stream = await openai.chat.completions
      .create({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "x" }] })
      .withResponse();
    const chunks = [];
    for await (const c of stream.data) chunks.push(c);
    expect(chunks.length).toBe(5);
    expect(chunks.every((c) => c.choices.length === 1 && !c.usage)).toBe(true);
    expect(await logged(stream.response.headers.get("x-request-id"))).toMatchObject({ totalTokens: 14 });
  });

  it("passes the usage chunk to a client that asked for it", async () => {
    const stream = await openai.chat.completions
      .create({
        model: "gpt-4o-mini",
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: "user", content: "x" }],
      })
      .withResponse();
    const chunks = [];
    for await (const c of stream.data) chunks.push(c);
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: FAKE_OPENAI_USAGE });
    // Its bytes went upstream unchanged.
    expect(openaiUp.seen.at(-1)!.body).toBe(
      JSON.stringify({
        model: "gpt-4o-mini",
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: "user", content: "x" }],
      }),
    );
    expect(await logged(stream.response.headers.get("x-request-id"))).toMatchObject({ totalTokens: 14 });
  });

  it("keeps every upstream credential out of the request log, the logs and /metrics", async () => {
    await gw.context.logWriter.flush();
    const haystack = [JSON.stringify(gw.context.db.requestLog.list()), JSON.stringify(log.lines), await metrics()].join(
      "\n",
    );
    for (const secret of Object.values(KEYS)) expect(haystack).not.toContain(secret);
  });
});
