import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { createGateway, type Gateway } from "../index.js";
import type { ProviderConfig } from "../providers/provider-config.js";
import {
  capturedLogger,
  eventually,
  FAKE_ANTHROPIC_MODELS,
  FAKE_PROMPT_MODEL,
  FakeAnthropic,
  FakeControlPlane,
  FakeOpenAi,
  makeKey,
  tempDir,
} from "@tollgate/testkit";
import { testConfig } from "../../test/test-config.js";

const UPSTREAM = { anthropic: "sk-ant-client-fidelity-1", openai: "sk-openai-client-fidelity-2" };
const MAX_BODY = 256 * 1024;

/** Issue 21: what the official SDKs see through a gateway, item by item. */
describe("client fidelity (issue 21)", () => {
  const dir = tempDir();
  const key = makeKey();
  const onlyClaude = makeKey({ allowedModels: ["claude-*"] });
  const openaiOnly = makeKey({ allowedProviders: ["openai"] });
  const oneRpm = makeKey({ rpmLimit: 1 });
  const noBudget = makeKey({ budgetUsd: 0 });
  const cp = new FakeControlPlane(
    [key.upsert, onlyClaude.upsert, openaiOnly.upsert, oneRpm.upsert, noBudget.upsert],
    1,
  );
  const anthropicUp = new FakeAnthropic(UPSTREAM.anthropic);
  const openaiUp = new FakeOpenAi();
  const log = capturedLogger();
  let gw: Gateway;
  let base = "";
  let openai: OpenAI;
  let anthropic: Anthropic;
  let limited: OpenAI;

  beforeAll(async () => {
    await Promise.all([cp.start(), anthropicUp.start(), openaiUp.start()]);
    const common = { models: [] as string[], modelPatterns: [] as string[], timeoutMs: 2_000 };
    const providers: ProviderConfig[] = [
      {
        ...common,
        name: "anthropic",
        kind: "anthropic",
        baseUrl: anthropicUp.url,
        apiKey: UPSTREAM.anthropic,
        modelPatterns: ["claude-*"],
      },
      {
        ...common,
        name: "openai",
        kind: "openai",
        baseUrl: `${openaiUp.url}/v1`,
        apiKey: UPSTREAM.openai,
        modelPatterns: ["*"],
      },
    ];
    gw = createGateway(testConfig(dir.path, cp.url, cp.token, { providers, maxBodyBytes: MAX_BODY }), {
      logger: log.logger,
    });
    base = `http://127.0.0.1:${(await gw.start()).port}`;
    await eventually(() => (gw.context.syncState.ready ? true : undefined));
    openai = new OpenAI({ apiKey: key.secret, baseURL: `${base}/v1`, maxRetries: 0 });
    anthropic = new Anthropic({ apiKey: key.secret, baseURL: base, maxRetries: 0 });
    limited = new OpenAI({ apiKey: onlyClaude.secret, baseURL: `${base}/v1`, maxRetries: 0 });
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
  const refusals = () => gw.context.db.requestLog.list().filter((r) => r.status === 413).length;

  it("1: reads an oversized body before its 413, in each API's shape, and the SDKs do not retry it", async () => {
    const retrying = new OpenAI({ apiKey: key.secret, baseURL: `${base}/v1`, maxRetries: 2 });
    const before = refusals();
    const big = "x".repeat(MAX_BODY + 1024);
    const err = await retrying.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: big }] })
      .catch((e: unknown) => e);
    // A 413 the client could read, not a connection error.
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err).not.toBeInstanceOf(OpenAI.APIConnectionError);
    expect(err).toMatchObject({ status: 413, code: "request_too_large", type: "invalid_request_error" });
    expect((err as InstanceType<typeof OpenAI.APIError>).headers?.get("x-should-retry")).toBe("false");

    const retryingAnthropic = new Anthropic({ apiKey: key.secret, baseURL: base, maxRetries: 2 });
    const aErr = await retryingAnthropic.messages
      .create({ model: "claude-fidelity", max_tokens: 10, messages: [{ role: "user", content: big }] })
      .catch((e: unknown) => e);
    expect(aErr).toBeInstanceOf(Anthropic.APIError);
    expect(aErr).toMatchObject({ status: 413, error: { type: "error", error: { type: "request_too_large" } } });
    await gw.context.logWriter.flush();
    // One refusal per call: neither SDK retried.
    expect(refusals() - before).toBe(2);

    // The connection served on: a normal call right after succeeds.
    const ok = await retrying.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(ok.choices[0]!.message.content).toBe("Hello from the fake OpenAI.");
  });

  it("2: routes POST /v1/responses without a model (a stored prompt) to the OpenAI-format provider, and accounts for it", async () => {
    const { data, response } = await openai.responses
      .create({ prompt: { id: "pmpt_fidelity", version: "2" }, input: "hi" })
      .withResponse();
    expect(data.output_text).toBe("Hello from the fake OpenAI.");
    expect(JSON.parse(openaiUp.seen.at(-1)!.body)).not.toHaveProperty("model");
    expect(await logged(response.headers.get("x-request-id"))).toMatchObject({
      provider: "openai",
      model: FAKE_PROMPT_MODEL,
      status: 200,
      totalTokens: 14,
    });
    const streamed = await openai.responses
      .create({ prompt: { id: "pmpt_fidelity" }, input: "hi", stream: true })
      .withResponse();
    for await (const _event of streamed.data) {
      // drained to the end
    }
    expect(await logged(streamed.response.headers.get("x-request-id"))).toMatchObject({
      provider: "openai",
      model: FAKE_PROMPT_MODEL,
      stream: true,
      totalTokens: 14,
    });

    // A key limited to some models must name one: the gateway cannot check what a stored prompt picks.
    const err = await limited.responses.create({ prompt: { id: "pmpt_fidelity" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(err).toMatchObject({ status: 403, code: "model_not_allowed", param: "model" });
  });

  it("3: answers an Anthropic client's model list in Anthropic's shape, with the Anthropic providers' models, filtered by the key's scopes", async () => {
    const ids: string[] = [];
    // Auto-pagination through after_id, one model a page.
    for await (const m of anthropic.models.list({ limit: 1 })) {
      expect(m).toMatchObject({ type: "model", display_name: expect.any(String), created_at: expect.any(String) });
      ids.push(m.id);
    }
    expect(ids).toEqual(FAKE_ANTHROPIC_MODELS);
    // The OpenAI client still sees the OpenAI upstream's list, in OpenAI's shape.
    const openAiIds = (await openai.models.list()).data.map((m) => m.id);
    expect(openAiIds).toContain("gpt-4o-mini");
    expect(openAiIds).not.toContain("kimi-k2-anthropic");

    const onlySonnet = new Anthropic({ apiKey: onlyClaude.secret, baseURL: base, maxRetries: 0 });
    expect((await onlySonnet.models.list()).data.map((m) => m.id)).toEqual(
      FAKE_ANTHROPIC_MODELS.filter((id) => id.startsWith("claude-")),
    );
    const noAnthropic = new Anthropic({ apiKey: openaiOnly.secret, baseURL: base, maxRetries: 0 });
    expect((await noAnthropic.models.list()).data).toEqual([]);
  });

  it("4: serves GET /v1/models/{id} in each API's shape, 404 for a model the key may not use", async () => {
    expect(await openai.models.retrieve("gpt-4o-mini")).toMatchObject({
      id: "gpt-4o-mini",
      object: "model",
      owned_by: "openai",
    });
    const missing = await openai.models.retrieve("gpt-nope").catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect(missing).toMatchObject({ code: "model_not_found" });

    expect(await anthropic.models.retrieve("claude-haiku-4-5")).toMatchObject({
      type: "model",
      id: "claude-haiku-4-5",
      display_name: "claude-haiku-4-5",
    });
    const hidden = await new Anthropic({ apiKey: onlyClaude.secret, baseURL: base, maxRetries: 0 }).models
      .retrieve("kimi-k2-anthropic")
      .catch((e: unknown) => e);
    expect(hidden).toBeInstanceOf(Anthropic.NotFoundError);
    expect(hidden).toMatchObject({ error: { type: "error", error: { type: "not_found_error" } } });
  });

  it("5: serves the Responses API's sub-resources, each response only to the key that created it, on any gateway", async () => {
    const created = await openai.responses.create({
      model: "gpt-4o-mini",
      input: "hello",
      metadata: { tollgate_key_id: "ak_forged", mine: "yes" },
    });
    // The owner record is the gateway's, whatever the client sent.
    expect(created.metadata).toEqual({ mine: "yes", tollgate_key_id: key.upsert.id });
    expect((await openai.responses.retrieve(created.id)).output_text).toBe("Hello from the fake OpenAI.");
    const items = await openai.responses.inputItems.list(created.id);
    expect(items.data).toHaveLength(1);
    expect(
      (
        await openai.responses.inputTokens.count({
          model: "gpt-4o-mini",
          input: "hi",
          previous_response_id: created.id,
        })
      ).input_tokens,
    ).toBe(7);
    const compacted = await openai.responses.compact({ model: "gpt-4o-mini", input: "hi" });
    expect(compacted.object).toBe("response.compaction");

    // Background mode: create, resume its stream, cancel; its usage counts once it is read finished.
    const bg = await openai.responses.create({ model: "gpt-4o-mini", input: "long job", background: true });
    expect(bg.status).toBe("queued");
    const events: string[] = [];
    for await (const e of await openai.responses.retrieve(bg.id, { stream: true, starting_after: 0 }))
      events.push(e.type);
    expect(events.at(0)).toBe("response.created");
    expect(events).toContain("response.output_text.delta");
    expect(events.at(-1)).toBe("response.completed");
    expect((await openai.responses.cancel(bg.id)).status).toBe("cancelled");
    const job = await openai.responses.create({ model: "gpt-4o-mini", input: "job", background: true });
    openaiUp.responses.finish(job.id);
    const first = await openai.responses.retrieve(job.id).withResponse();
    const again = await openai.responses.retrieve(job.id).withResponse();
    expect(first.data.status).toBe("completed");
    expect(await logged(first.response.headers.get("x-request-id"))).toMatchObject({
      model: "gpt-4o-mini",
      totalTokens: 14,
    });
    expect(await logged(again.response.headers.get("x-request-id"))).toMatchObject({ totalTokens: null });

    // Another key, here or on another gateway (nothing is kept on this one), never sees it.
    const other = new OpenAI({ apiKey: openaiOnly.secret, baseURL: `${base}/v1`, maxRetries: 0 });
    for (const attempt of [
      () => other.responses.retrieve(created.id),
      () => other.responses.delete(created.id),
      () => other.responses.cancel(created.id),
      () => other.responses.inputItems.list(created.id),
      () => other.responses.create({ model: "gpt-4o-mini", input: "go on", previous_response_id: created.id }),
    ]) {
      const err = await attempt().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    }
    // A conversation has no owner the gateway could check: refused.
    const conv = await openai.responses
      .create({ model: "gpt-4o-mini", input: "x", conversation: "conv_someone_elses" })
      .catch((e: unknown) => e);
    expect(conv).toBeInstanceOf(OpenAI.BadRequestError);
    expect(conv).toMatchObject({ param: "conversation", code: "unsupported_parameter" });

    expect(openaiUp.responses.stored.has(created.id)).toBe(true);
    await openai.responses.delete(created.id);
    expect(openaiUp.responses.stored.has(created.id)).toBe(false);
    expect(await openai.responses.retrieve(created.id).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("5: a second gateway of the fleet checks ownership the same way, with no shared state", async () => {
    const created = await openai.responses.create({ model: "gpt-4o-mini", input: "fleet" });
    const dir2 = tempDir();
    const providers: ProviderConfig[] = [
      {
        name: "openai",
        kind: "openai",
        baseUrl: `${openaiUp.url}/v1`,
        apiKey: UPSTREAM.openai,
        models: [],
        modelPatterns: ["*"],
        timeoutMs: 2_000,
      },
    ];
    const gw2 = createGateway(testConfig(dir2.path, cp.url, cp.token, { providers }), { logger: log.logger });
    try {
      const base2 = `http://127.0.0.1:${(await gw2.start()).port}`;
      await eventually(() => (gw2.context.syncState.ready ? true : undefined));
      const same = new OpenAI({ apiKey: key.secret, baseURL: `${base2}/v1`, maxRetries: 0 });
      expect((await same.responses.retrieve(created.id)).id).toBe(created.id);
      const other = new OpenAI({ apiKey: openaiOnly.secret, baseURL: `${base2}/v1`, maxRetries: 0 });
      expect(await other.responses.retrieve(created.id).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.NotFoundError);
    } finally {
      await gw2.stop();
      dir2.remove();
    }
  });

  it("6: routes Anthropic endpoints by the Anthropic providers' model lists and names, not by a claude-* name", async () => {
    // Not claude-*, and the catch-all OpenAI provider's pattern matches it: the Anthropic upstream's list names it.
    const { data, response } = await anthropic.messages
      .create({ model: "kimi-k2-anthropic", max_tokens: 10, messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    expect(data.content[0]).toMatchObject({ type: "text", text: "Hello from the fake Anthropic." });
    expect(anthropicUp.seen.at(-1)!.path).toBe("/v1/messages");
    expect(await logged(response.headers.get("x-request-id"))).toMatchObject({
      provider: "anthropic",
      model: "kimi-k2-anthropic",
    });
    expect(
      (
        await anthropic.messages.countTokens({
          model: "kimi-k2-anthropic",
          messages: [{ role: "user", content: "hi" }],
        })
      ).input_tokens,
    ).toBe(42);
    // The same name on an OpenAI endpoint still goes where the OpenAI routes say.
    await openai.chat.completions.create({ model: "kimi-k2-anthropic", messages: [{ role: "user", content: "hi" }] });
    expect(JSON.parse(openaiUp.seen.at(-1)!.body)).toMatchObject({ model: "kimi-k2-anthropic" });
  });

  it("7: answers unserved Batch, Files and stored chat completion APIs with a clear 404 in the API's shape, naming what is served", async () => {
    const openAiCalls = [
      () =>
        openai.batches.create({ input_file_id: "file-1", endpoint: "/v1/chat/completions", completion_window: "24h" }),
      () => openai.files.list(),
      () => openai.chat.completions.retrieve("chatcmpl-fake"),
    ];
    for (const attempt of openAiCalls) {
      const err = await attempt().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.NotFoundError);
      expect(err).toMatchObject({ code: "endpoint_not_served", type: "invalid_request_error" });
      expect((err as Error).message).toMatch(/(is|are) not served/);
      expect((err as Error).message).toContain("This gateway serves POST /v1/chat/completions");
    }
    const batches = await anthropic.messages.batches.list().catch((e: unknown) => e);
    expect(batches).toBeInstanceOf(Anthropic.NotFoundError);
    expect(batches).toMatchObject({
      error: {
        type: "error",
        error: { type: "not_found_error", message: expect.stringContaining("Message Batches are not served") },
      },
    });
    const files = await anthropic.beta.files.list().catch((e: unknown) => e);
    expect(files).toBeInstanceOf(Anthropic.NotFoundError);
    expect((files as Error).message).toContain("Files API is not served");
  });

  it("8: answers a 404 on an Anthropic path in Anthropic's error shape", async () => {
    const raw = await fetch(`${base}/v1/messages/nope`, { method: "POST", headers: { "x-api-key": key.secret } });
    expect(raw.status).toBe(404);
    expect(await raw.json()).toMatchObject({
      type: "error",
      error: { type: "not_found_error", message: expect.stringContaining("Unknown request URL") },
    });
    const viaSdk = await anthropic.get("/v1/nothing-here").catch((e: unknown) => e);
    expect(viaSdk).toBeInstanceOf(Anthropic.NotFoundError);
    expect(viaSdk).toMatchObject({ error: { type: "error", error: { type: "not_found_error" } } });
    // An OpenAI client's 404 keeps OpenAI's shape.
    const openAi = await fetch(`${base}/v1/nothing-here`);
    expect(await openAi.json()).toMatchObject({ error: { type: "invalid_request_error", code: "unknown_url" } });
  });

  it("9: passes ?beta=true, the client's user-agent and x-stainless-* upstream, never its credential", async () => {
    await anthropic.beta.messages.create({
      model: "claude-fidelity",
      max_tokens: 10,
      messages: [{ role: "user", content: "hi" }],
      betas: ["files-api-2025-04-14"],
    });
    expect(anthropicUp.seen.at(-1)!.headers["anthropic-beta"]).toBe("files-api-2025-04-14");
    // Earlier SDK releases call their beta methods as /v1/messages?beta=true.
    await anthropic.post("/v1/messages", {
      query: { beta: "true" },
      body: { model: "claude-fidelity", max_tokens: 10, messages: [{ role: "user", content: "hi" }] },
    });
    const a = anthropicUp.seen.at(-1)!;
    expect(a.path).toBe("/v1/messages?beta=true");
    expect(a.headers["user-agent"]).toMatch(/^Anthropic\/JS /);
    expect(a.headers["x-stainless-lang"]).toBe("js");
    expect(a.headers["x-stainless-retry-count"]).toBe("0");
    expect(a.headers["x-api-key"]).toBe(UPSTREAM.anthropic);
    expect(JSON.stringify(a.headers)).not.toContain(key.secret);

    await openai.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
    const o = openaiUp.seen.at(-1)!;
    expect(o.headers["user-agent"]).toMatch(/^OpenAI\/JS /);
    expect(o.headers["x-stainless-lang"]).toBe("js");
    expect(o.headers["x-stainless-runtime"]).toBe("node");
    expect(o.headers.authorization).toBe(`Bearer ${UPSTREAM.openai}`);
    expect(JSON.stringify(o.headers)).not.toContain(key.secret);
  });

  it("9b: a client that sends no user-agent: the gateway's own goes upstream, with the request's id", async () => {
    // node:http sends no user-agent unless told to (fetch and the SDKs always do).
    const answer = await new Promise<{ status: number; requestId: string }>((resolve, reject) => {
      const req = httpRequest(
        `${base}/v1/chat/completions`,
        { method: "POST", headers: { authorization: `Bearer ${key.secret}`, "content-type": "application/json" } },
        (res) => {
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode ?? 0, requestId: String(res.headers["x-request-id"]) }));
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }));
    });
    expect(answer.status).toBe(200);
    const o = openaiUp.seen.at(-1)!;
    expect(o.headers["user-agent"]).toMatch(/^tollgate-gateway\//);
    expect(o.headers["x-request-id"]).toBe(answer.requestId);
    expect(o.headers.accept).toBe("application/json");
    expect(o.headers.authorization).toBe(`Bearer ${UPSTREAM.openai}`);
    expect(Object.keys(o.headers).filter((h) => h.startsWith("x-stainless-"))).toEqual([]);
  });

  it("10: words errors as the SDKs key on them: 429 types, insufficient_quota, server_error, request ids, timeout_error, x-should-retry", async () => {
    // Rate limits name what ran out, and /v1/messages carries the key's own quota in Anthropic's headers.
    const a = new Anthropic({ apiKey: oneRpm.secret, baseURL: base, maxRetries: 0 });
    const ok = await a.messages
      .create({ model: "claude-fidelity", max_tokens: 10, messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    expect(ok.response.headers.get("anthropic-ratelimit-requests-limit")).toBe("1");
    expect(ok.response.headers.get("anthropic-ratelimit-requests-remaining")).toBe("0");
    expect(new Date(ok.response.headers.get("anthropic-ratelimit-requests-reset")!).getTime()).toBeGreaterThan(0);
    const limited429 = await new OpenAI({
      apiKey: oneRpm.secret,
      baseURL: `${base}/v1`,
      maxRetries: 0,
    }).chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(limited429).toBeInstanceOf(OpenAI.RateLimitError);
    expect(limited429).toMatchObject({ type: "requests", code: "rate_limit_exceeded" });

    // A spent total budget never resets: insufficient_quota, and the SDKs stop retrying.
    const broke = await new OpenAI({ apiKey: noBudget.secret, baseURL: `${base}/v1`, maxRetries: 2 }).chat.completions
      .create({ model: "gpt-4o-mini", max_tokens: 100, messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(broke).toMatchObject({ status: 429, type: "insufficient_quota", code: "insufficient_quota" });
    expect((broke as InstanceType<typeof OpenAI.APIError>).headers?.get("x-should-retry")).toBe("false");

    // 401 and 403 are final too, in both shapes; Anthropic's carry the gateway's request id.
    const bad = await new OpenAI({ apiKey: "llmp_not-a-real-key", baseURL: `${base}/v1`, maxRetries: 0 }).models
      .list()
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((bad as InstanceType<typeof OpenAI.APIError>).headers?.get("x-should-retry")).toBe("false");
    const denied = (await new Anthropic({ apiKey: openaiOnly.secret, baseURL: base, maxRetries: 2 }).messages
      .create({ model: "claude-fidelity", max_tokens: 10, messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e)) as InstanceType<typeof Anthropic.APIError>;
    expect(denied).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(denied.headers?.get("x-should-retry")).toBe("false");
    expect(denied.requestID).toMatch(/^req_/);
    expect(denied.error).toMatchObject({ request_id: denied.requestID });

    // Gateway-made 5xx: server_error (OpenAI); a timeout is Anthropic's timeout_error.
    const slow = (await anthropic.messages
      .create({ model: "claude-slow", max_tokens: 10, messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e)) as InstanceType<typeof Anthropic.APIError>;
    expect(slow.status).toBe(504);
    expect(slow.error).toMatchObject({ type: "error", error: { type: "timeout_error" }, request_id: slow.requestID });
    const dir2 = tempDir();
    const dead: ProviderConfig = {
      name: "dead",
      kind: "openai",
      baseUrl: "http://127.0.0.1:1/v1",
      apiKey: UPSTREAM.openai,
      models: [],
      modelPatterns: ["*"],
      timeoutMs: 2_000,
    };
    const gw2 = createGateway(testConfig(dir2.path, cp.url, cp.token, { providers: [dead] }), { logger: log.logger });
    try {
      const base2 = `http://127.0.0.1:${(await gw2.start()).port}`;
      await eventually(() => (gw2.context.syncState.ready ? true : undefined));
      const down = new OpenAI({ apiKey: key.secret, baseURL: `${base2}/v1`, maxRetries: 0 });
      const unreachable = await down.chat.completions
        .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
        .catch((e: unknown) => e);
      expect(unreachable).toMatchObject({ status: 502, type: "server_error", code: "upstream_unreachable" });
    } finally {
      await gw2.stop();
      dir2.remove();
    }
  });
});
