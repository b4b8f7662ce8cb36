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
  FAKE_ANTHROPIC_USAGE,
  FakeAnthropic,
  FakeControlPlane,
  FakeOpenAi,
  makeKey,
  tempDir,
} from "@tollgate/testkit";
import { testConfig } from "../../test/test-config.js";

const ANTHROPIC_UPSTREAM_KEY = "sk-ant-upstream-secret-456";
const OPENAI_UPSTREAM_KEY = "sk-openai-upstream-secret-789";

// Response bodies are asserted field by field; their static type adds nothing.
const json = (res: Response): Promise<any> => res.json();

async function closedPortUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  await new Promise<void>((r) => s.close(() => r()));
  return url;
}

describe("routing by model to OpenAI and Anthropic upstreams", () => {
  const dir = tempDir();
  const key = makeKey();
  const onlyOpenai = makeKey({ allowedProviders: ["openai"] });
  const cp = new FakeControlPlane([key.upsert, onlyOpenai.upsert], 1);
  const anthropicUp = new FakeAnthropic(ANTHROPIC_UPSTREAM_KEY);
  const openaiUp = new FakeOpenAi();
  let gw: Gateway;
  let base = "";
  let anthropic: Anthropic;
  let openai: OpenAI;

  beforeAll(async () => {
    await Promise.all([cp.start(), anthropicUp.start(), openaiUp.start()]);
    const providers: ProviderConfig[] = [
      {
        name: "anthropic",
        kind: "anthropic",
        baseUrl: anthropicUp.url,
        apiKey: ANTHROPIC_UPSTREAM_KEY,
        models: ["claude-exact-1"],
        modelPatterns: ["claude-*"],
        timeoutMs: 500,
      },
      {
        name: "openai",
        kind: "openai",
        baseUrl: `${openaiUp.url}/v1`,
        apiKey: OPENAI_UPSTREAM_KEY,
        // An explicit name beats another provider's pattern.
        models: ["claude-lookalike"],
        modelPatterns: ["gpt-*", "text-embedding-*"],
        timeoutMs: 2_000,
      },
      {
        name: "dead",
        kind: "anthropic",
        baseUrl: await closedPortUrl(),
        apiKey: "x",
        models: ["claude-dead"],
        modelPatterns: [],
        timeoutMs: 2_000,
      },
    ];
    gw = createGateway(testConfig(dir.path, cp.url, cp.token, { logLevel: "silent", providers }), {
      logger: capturedLogger().logger,
    });
    base = `http://127.0.0.1:${(await gw.start()).port}`;
    await eventually(() => (gw.context.syncState.ready ? true : undefined));
    anthropic = new Anthropic({ apiKey: key.secret, baseURL: base, maxRetries: 0 });
    openai = new OpenAI({ apiKey: key.secret, baseURL: `${base}/v1`, maxRetries: 0 });
  });

  afterAll(async () => {
    await gw?.stop();
    await Promise.all([cp.stop(), anthropicUp.stop(), openaiUp.stop()]);
    dir.remove();
  });

  const logged = (requestId: string | null | undefined) =>
    eventually(async () => {
      await gw.context.logWriter.flush();
      return gw.context.db.requestLog.list().find((r) => r.requestId === requestId);
    });
  const metrics = async () => gw.context.metrics.text();

  it("answers a message through the Anthropic SDK with the upstream's credential, and logs its usage", async () => {
    const { data, response } = await anthropic.messages
      .create({ model: "claude-test-1", max_tokens: 64, messages: [{ role: "user", content: "Hi" }] })
      .withResponse();
    expect(data.content).toEqual([{ type: "text", text: "Hello from the fake Anthropic." }]);
    expect(data.usage).toMatchObject(FAKE_ANTHROPIC_USAGE.message);
    expect(response.headers.get("request-id")).toBe("req_fake_anthropic_1");
    const seen = anthropicUp.seen.at(-1)!;
    expect(seen.path).toBe("/v1/messages");
    expect(seen.headers["x-api-key"]).toBe(ANTHROPIC_UPSTREAM_KEY);
    // The SDK's own version header travels as it sent it.
    expect(seen.headers["anthropic-version"]).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(seen.headers.authorization).toBeUndefined();
    expect(JSON.stringify(seen.headers)).not.toContain(key.secret);
    expect(await logged(response.headers.get("x-request-id"))).toMatchObject({
      keyId: key.upsert.id,
      model: "claude-test-1",
      provider: "anthropic",
      status: 200,
      stream: false,
      promptTokens: 12,
      completionTokens: 6,
      totalTokens: 18,
      error: null,
    });
  });

  it("forwards the client's bytes and anthropic-* headers unchanged, with the key in a Bearer header too", async () => {
    const raw = `{"max_tokens": 8,   "model":"claude-exact-1","messages":[{"role":"user","content":"x"}], "x_extra": true}`;
    const res = await fetch(`${base}/v1/messages`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${key.secret}`,
        "content-type": "application/json",
        "anthropic-version": "2023-01-01",
        "anthropic-beta": "tools-2024-04-04",
      },
      body: raw,
    });
    expect(res.status).toBe(200);
    const seen = anthropicUp.seen.at(-1)!;
    expect(seen.body).toBe(raw);
    expect(seen.headers).toMatchObject({
      "anthropic-version": "2023-01-01",
      "anthropic-beta": "tools-2024-04-04",
      "x-api-key": ANTHROPIC_UPSTREAM_KEY,
    });
    // No version from the client: the gateway sends the stable one.
    const bare = await fetch(`${base}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": key.secret },
      body: raw,
    });
    expect(bare.status).toBe(200);
    expect(anthropicUp.seen.at(-1)!.headers["anthropic-version"]).toBe("2023-06-01");
  });

  it("streams message events through as they arrive and logs usage from message_start and message_delta", async () => {
    const stream = await anthropic.messages.create({
      model: "claude-test-1",
      max_tokens: 64,
      stream: true,
      messages: [{ role: "user", content: "Hi" }],
    });
    const types: string[] = [];
    let text = "";
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text;
    }
    expect(types).toEqual([
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    expect(text).toBe("Hello from the fake Anthropic.");
    const row = await eventually(async () => {
      await gw.context.logWriter.flush();
      return gw.context.db.requestLog.list().find((r) => r.model === "claude-test-1" && r.stream);
    });
    expect(row).toMatchObject({
      status: 200,
      keyId: key.upsert.id,
      promptTokens: 25,
      completionTokens: 15,
      totalTokens: 40,
      error: null,
    });
  });

  it("passes the first SSE event on before the upstream sends the rest", async () => {
    const res = await fetch(`${base}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": key.secret, "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({
        model: "claude-held",
        max_tokens: 8,
        stream: true,
        messages: [{ role: "user", content: "x" }],
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain("event: message_start");
    anthropicUp.release();
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toContain("event: message_stop");
    expect(await logged(res.headers.get("x-request-id"))).toMatchObject({
      stream: true,
      promptTokens: 25,
      completionTokens: 15,
    });
  });

  it("counts tokens through /v1/messages/count_tokens", async () => {
    expect(
      await anthropic.messages.countTokens({ model: "claude-test-1", messages: [{ role: "user", content: "x" }] }),
    ).toEqual({ input_tokens: 42 });
    expect(anthropicUp.seen.at(-1)!.path).toBe("/v1/messages/count_tokens");
  });

  it("aborts the upstream stream when the client goes away", async () => {
    const before = anthropicUp.closedEarly;
    const abort = new AbortController();
    const res = await fetch(`${base}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": key.secret, "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({
        model: "claude-held",
        max_tokens: 8,
        stream: true,
        messages: [{ role: "user", content: "x" }],
      }),
      signal: abort.signal,
    });
    await res.body!.getReader().read();
    abort.abort();
    await eventually(() => (anthropicUp.closedEarly > before ? true : undefined));
    anthropicUp.release();
    expect(await logged(res.headers.get("x-request-id"))).toMatchObject({ error: "client_closed" });
  });

  it.each([
    [400, Anthropic.BadRequestError, "invalid_request_error"],
    [429, Anthropic.RateLimitError, "rate_limit_error"],
    [500, Anthropic.InternalServerError, "api_error"],
  ] as const)("keeps an upstream %i's status and Anthropic error body", async (status, ErrorClass, type) => {
    const err = await anthropic.messages
      .create({ model: `claude-error-${status}`, max_tokens: 8, messages: [{ role: "user", content: "x" }] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ErrorClass);
    const apiErr = err as InstanceType<typeof Anthropic.APIError>;
    expect(apiErr.status).toBe(status);
    expect(apiErr.error).toMatchObject({ type: "error", error: { type } });
    if (status === 429) expect(apiErr.headers?.get("retry-after")).toBe("7");
    expect(await logged(apiErr.headers?.get("x-request-id"))).toMatchObject({
      status,
      error: `upstream_status_${status}`,
    });
    expect(await metrics()).toMatch(
      new RegExp(
        `^tollgate_gateway_upstream_errors_total\\{provider="anthropic",reason="http_${status >= 500 ? "5xx" : "4xx"}"\\} \\d+$`,
        "m",
      ),
    );
  });

  it("answers an upstream timeout with 504 and a connection failure with 502, in Anthropic's error shape", async () => {
    const post = (model: string) =>
      fetch(`${base}/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": key.secret, "content-type": "application/json", "anthropic-version": "2023-06-01" },
        body: JSON.stringify({ model, max_tokens: 8, messages: [{ role: "user", content: "x" }] }),
      });
    const slow = await post("claude-slow");
    expect(slow.status).toBe(504);
    const slowBody = await json(slow);
    // Issue 21: a timeout is Anthropic's timeout_error, and a gateway-made error carries the request id.
    expect(slowBody).toEqual({
      type: "error",
      error: { type: "timeout_error", message: expect.stringContaining("did not answer in time") },
      request_id: slow.headers.get("x-request-id"),
    });
    const dead = await post("claude-dead");
    expect(dead.status).toBe(502);
    const deadBody = await json(dead);
    expect(deadBody).toMatchObject({
      type: "error",
      error: { type: "api_error", message: expect.stringContaining("Could not reach") },
    });
    expect(JSON.stringify([slowBody, deadBody])).not.toContain("secret");
    const text = await metrics();
    expect(text).toMatch(/^tollgate_gateway_upstream_errors_total\{provider="anthropic",reason="timeout"\} 1$/m);
    expect(text).toMatch(/^tollgate_gateway_upstream_errors_total\{provider="dead",reason="connect"\} 1$/m);
    // The SDK maps them to its own classes.
    await expect(
      anthropic.messages.create({ model: "claude-dead", max_tokens: 8, messages: [{ role: "user", content: "x" }] }),
    ).rejects.toBeInstanceOf(Anthropic.APIError);
  });

  it("refuses a Claude model to a key limited to openai with 403 naming the rule, in Anthropic's shape", async () => {
    const scoped = new Anthropic({ apiKey: onlyOpenai.secret, baseURL: base, maxRetries: 0 });
    const err = (await scoped.messages
      .create({ model: "claude-test-1", max_tokens: 8, messages: [{ role: "user", content: "x" }] })
      .then(
        () => undefined,
        (e: unknown) => e,
      )) as InstanceType<typeof Anthropic.APIError>;
    expect(err).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(err.error).toEqual({
      type: "error",
      error: {
        type: "permission_error",
        message: "This API key may not use provider 'anthropic' (allowed_providers: openai).",
      },
      // Issue 21: errors the gateway makes carry its request id, as Anthropic's do.
      request_id: err.headers?.get("x-request-id"),
    });
    expect(err.requestID).toBe(err.headers?.get("x-request-id"));
    expect(err.headers?.get("x-should-retry")).toBe("false");
    expect(await logged(err.headers?.get("x-request-id"))).toMatchObject({
      status: 403,
      keyId: onlyOpenai.upsert.id,
      provider: "anthropic",
      error: "provider_not_allowed",
    });
    expect(await metrics()).toMatch(/^tollgate_gateway_policy_denials_total\{rule="provider"\} \d+$/m);
    // The same key reaches the OpenAI upstream.
    const ok = await new OpenAI({
      apiKey: onlyOpenai.secret,
      baseURL: `${base}/v1`,
      maxRetries: 0,
    }).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "x" }],
    });
    expect(ok.choices[0]!.message.content).toBe("Hello from the fake OpenAI.");
  });

  it("answers a bad key on /v1/messages in Anthropic's shape (AuthenticationError)", async () => {
    const bad = new Anthropic({ apiKey: "sk-ant-not-a-tollgate-key", baseURL: base, maxRetries: 0 });
    const err = await bad.messages
      .create({ model: "claude-test-1", max_tokens: 8, messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((err as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({
      type: "error",
      error: { type: "authentication_error" },
    });
  });

  it("routes each model to its provider: OpenAI chat to the OpenAI fake, Claude messages to the Anthropic fake", async () => {
    const openaiBefore = openaiUp.seen.length;
    const anthropicBefore = anthropicUp.seen.length;
    const chat = await openai.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] })
      .withResponse();
    expect(chat.data.usage).toMatchObject({ total_tokens: 14 });
    const seen = openaiUp.seen.at(-1)!;
    expect(seen.path).toBe("/v1/chat/completions");
    expect(seen.headers.authorization).toBe(`Bearer ${OPENAI_UPSTREAM_KEY}`);
    expect(await logged(chat.response.headers.get("x-request-id"))).toMatchObject({
      model: "gpt-4o-mini",
      provider: "openai",
      promptTokens: 9,
      totalTokens: 14,
    });
    await anthropic.messages.create({
      model: "claude-exact-1",
      max_tokens: 8,
      messages: [{ role: "user", content: "x" }],
    });
    expect(openaiUp.seen.length).toBe(openaiBefore + 1);
    expect(anthropicUp.seen.length).toBe(anthropicBefore + 1);
    // An explicit model list wins over another provider's pattern.
    await openai.chat.completions.create({ model: "claude-lookalike", messages: [{ role: "user", content: "x" }] });
    expect(openaiUp.seen.at(-1)!.body).toContain("claude-lookalike");
  });

  it("answers 404 model_not_found for a model no provider serves, and 400 for a model on an endpoint its provider lacks", async () => {
    const missing = await openai.chat.completions
      .create({ model: "llama-3", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect((missing as InstanceType<typeof OpenAI.APIError>).code).toBe("model_not_found");
    const onMessages = await anthropic.messages
      .create({ model: "llama-3", max_tokens: 8, messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(onMessages).toBeInstanceOf(Anthropic.NotFoundError);
    const wrong = await openai.chat.completions
      .create({ model: "claude-test-1", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(OpenAI.BadRequestError);
    expect((wrong as InstanceType<typeof OpenAI.APIError>).code).toBe("unsupported_endpoint");
    expect((wrong as Error).message).toContain("POST /v1/messages");
  });

  it("passes embeddings through with the openai client and logs their usage", async () => {
    const { data, response } = await openai.embeddings
      .create({ model: "text-embedding-3-small", input: "hello" })
      .withResponse();
    expect(data.data[0]!.embedding).toEqual([0.25, -0.5, 1]);
    const seen = openaiUp.seen.at(-1)!;
    expect(seen.path).toBe("/v1/embeddings");
    expect(seen.headers.authorization).toBe(`Bearer ${OPENAI_UPSTREAM_KEY}`);
    expect(await logged(response.headers.get("x-request-id"))).toMatchObject({
      model: "text-embedding-3-small",
      status: 200,
      promptTokens: 4,
      totalTokens: 4,
    });
  });

  it("lists the union of the models the key may use", async () => {
    const ids = async (secret: string) =>
      (await new OpenAI({ apiKey: secret, baseURL: `${base}/v1`, maxRetries: 0 }).models.list()).data
        .map((m) => m.id)
        .sort();
    // claude-exact-1 and claude-lookalike are explicit; the OpenAI upstream's list adds what routes to it.
    expect(await ids(key.secret)).toEqual([
      "claude-dead",
      "claude-exact-1",
      "claude-lookalike",
      "gpt-4o-mini",
      "text-embedding-3-small",
    ]);
    expect(await ids(onlyOpenai.secret)).toEqual(["claude-lookalike", "gpt-4o-mini", "text-embedding-3-small"]);
  });

  it("keeps an OpenAI-shaped error on OpenAI routes", async () => {
    const res = await fetch(`${base}/v1/embeddings`, {
      method: "POST",
      headers: { authorization: `Bearer ${key.secret}` },
      body: "{",
    });
    expect(res.status).toBe(400);
    expect(await json(res)).toMatchObject({ error: { code: "invalid_json", type: "invalid_request_error" } });
  });
});
