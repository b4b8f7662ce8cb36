import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { APICallError, generateText, streamText } from "ai";
import { createGateway, type Gateway } from "../index.js";
import type { ProviderConfig } from "../providers/provider-config.js";
import {
  capturedLogger,
  eventually,
  FakeAnthropic,
  FakeControlPlane,
  FakeOpenAi,
  makeKey,
  tempDir,
} from "@tollgate/testkit";
import { testConfig } from "../../test/test-config.js";

const UPSTREAM = { anthropic: "sk-ant-ai-sdk-1", openai: "sk-openai-ai-sdk-2" };

/**
 * Issue 21 through the Vercel AI SDK, whose defaults are the Responses API
 * (OpenAI provider) and Messages (Anthropic provider).
 */
describe("the Vercel AI SDK through a gateway (issue 21)", () => {
  const dir = tempDir();
  const key = makeKey();
  const cp = new FakeControlPlane([key.upsert], 1);
  const anthropicUp = new FakeAnthropic(UPSTREAM.anthropic);
  const openaiUp = new FakeOpenAi();
  let gw: Gateway;
  let base = "";

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
    gw = createGateway(testConfig(dir.path, cp.url, cp.token, { providers, maxBodyBytes: 64 * 1024 }), {
      logger: capturedLogger().logger,
    });
    base = `http://127.0.0.1:${(await gw.start()).port}`;
    await eventually(() => (gw.context.syncState.ready ? true : undefined));
  });

  afterAll(async () => {
    await gw?.stop();
    await Promise.all([cp.stop(), anthropicUp.stop(), openaiUp.stop()]);
    dir.remove();
  });

  const logged = (requestId: string | undefined) =>
    eventually(async () => {
      await gw.context.logWriter.flush();
      return gw.context.db.requestLog.list().find((r) => r.requestId === requestId);
    });

  it("generates and streams through the Responses API, counting usage", async () => {
    const openai = createOpenAI({ apiKey: key.secret, baseURL: `${base}/v1` });
    const { text, usage, response } = await generateText({ model: openai("gpt-4o-mini"), prompt: "hi", maxRetries: 0 });
    expect(text).toBe("Hello from the fake OpenAI.");
    expect(usage.inputTokens).toBe(9);
    expect(openaiUp.seen.at(-1)!.path).toBe("/v1/responses");
    expect(await logged(response.headers?.["x-request-id"])).toMatchObject({ provider: "openai", totalTokens: 14 });

    const streamed = streamText({ model: openai("gpt-4o-mini"), prompt: "hi", maxRetries: 0 });
    expect(await streamed.text).toBe("Hello from the fake OpenAI.");
  });

  it("generates and streams through Messages, routing a model not named claude-* by the provider's model list", async () => {
    const anthropic = createAnthropic({ apiKey: key.secret, baseURL: `${base}/v1` });
    const { text } = await generateText({ model: anthropic("claude-fidelity"), prompt: "hi", maxRetries: 0 });
    expect(text).toBe("Hello from the fake Anthropic.");
    const streamed = streamText({ model: anthropic("kimi-k2-anthropic"), prompt: "hi", maxRetries: 0 });
    expect(await streamed.text).toBe("Hello from the fake Anthropic.");
    expect(await logged((await streamed.response).headers?.["x-request-id"])).toMatchObject({
      provider: "anthropic",
      model: "kimi-k2-anthropic",
      totalTokens: 40,
    });
  });

  it("sees a 413 it can read for an oversized body, not a connection error, and does not retry it", async () => {
    const openai = createOpenAI({ apiKey: key.secret, baseURL: `${base}/v1` });
    const err = await generateText({
      model: openai("gpt-4o-mini"),
      prompt: "x".repeat(80 * 1024),
      maxRetries: 2,
    }).catch((e: unknown) => e);
    const cause = (err as { lastError?: unknown }).lastError ?? err;
    expect(APICallError.isInstance(cause)).toBe(true);
    expect(cause).toMatchObject({ statusCode: 413, isRetryable: false });
  });
});
