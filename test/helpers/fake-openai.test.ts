import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { countPromptTokens, startFakeOpenAI, type FakeOpenAI } from "@tollgate/testkit";

// Proves the fake speaks OpenAI's real wire format: the official client parses it.
describe("fake OpenAI upstream", () => {
  const apiKey = "sk-fake-upstream-0123456789";
  let fake: FakeOpenAI;
  let client: OpenAI;

  beforeAll(async () => {
    fake = await startFakeOpenAI({ expectedApiKey: apiKey, chunkDelayMs: 20 });
    client = new OpenAI({ apiKey, baseURL: fake.baseUrl, maxRetries: 0 });
  });
  afterAll(async () => {
    await fake.close();
  });

  it("answers a plain chat completion with the echoed message and usage", async () => {
    const messages = [
      { role: "system" as const, content: "be brief" },
      { role: "user" as const, content: "hello there fake" },
    ];
    const res = await client.chat.completions.create({ model: "gpt-4o-mini", messages });
    expect(res.object).toBe("chat.completion");
    expect(res.model).toBe("gpt-4o-mini");
    expect(res.id).toMatch(/^chatcmpl-/);
    expect(res.choices[0]?.message.content).toBe("echo: hello there fake");
    expect(res.choices[0]?.finish_reason).toBe("stop");
    expect(res.usage).toMatchObject({
      prompt_tokens: countPromptTokens(messages),
      completion_tokens: 4,
      total_tokens: countPromptTokens(messages) + 4,
    });
    const rec = fake.chatRequests().at(-1);
    expect(rec?.headers.authorization).toBe(`Bearer ${apiKey}`);
    expect(rec?.body).toMatchObject({ model: "gpt-4o-mini", messages });
  });

  it("streams chunks as they are produced, then usage, then [DONE]", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "one two three four" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const arrivals: number[] = [];
    let content = "";
    let role: string | undefined;
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      expect(chunk.object).toBe("chat.completion.chunk");
      expect(chunk.model).toBe("gpt-4o");
      arrivals.push(Date.now());
      const c = chunk.choices[0];
      if (c?.delta.role) role = c.delta.role;
      if (c?.delta.content) content += c.delta.content;
      if (c?.finish_reason) finish = c.finish_reason;
      if (chunk.usage) {
        expect(chunk.choices).toEqual([]);
        usage = chunk.usage;
      }
    }
    expect(role).toBe("assistant");
    expect(content).toBe("echo: one two three four");
    expect(finish).toBe("stop");
    expect(usage).toMatchObject({ completion_tokens: 5, prompt_tokens: 7, total_tokens: 12 });
    // role + 5 pieces + finish + usage; pieces are spread over time, not one burst.
    expect(arrivals.length).toBe(8);
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThanOrEqual(50);
  });

  it("omits the usage chunk unless include_usage is set, and honours max_tokens", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "a b c d e" }],
      stream: true,
      max_tokens: 3,
    });
    let content = "";
    let finish: string | null | undefined;
    let sawUsage = false;
    for await (const chunk of stream) {
      if (chunk.usage) sawUsage = true;
      content += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(sawUsage).toBe(false);
    expect(content).toBe("echo: a b");
    expect(finish).toBe("length");
  });

  it("lists models", async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toContain("gpt-4o-mini");
  });

  it("rejects a wrong key with OpenAI's 401 error format", async () => {
    const bad = new OpenAI({ apiKey: "sk-wrong-key-xyz", baseURL: fake.baseUrl, maxRetries: 0 });
    const err = await bad.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe("invalid_api_key");
    expect(fake.requests.at(-1)?.status).toBe(401);
  });

  it("answers a queued failure once", async () => {
    fake.failNext({ status: 429, message: "slow down", code: "rate_limit_exceeded", headers: { "retry-after": "1" } });
    const err = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const ok = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(ok.choices[0]?.message.content).toBe("echo: hi");
  });

  it("counts a stream the client abandons as aborted", async () => {
    const before = fake.abortedStreams;
    fake.setReply(() => "x ".repeat(50));
    const ac = new AbortController();
    const stream = await client.chat.completions.create(
      { model: "gpt-4o-mini", messages: [{ role: "user", content: "long" }], stream: true },
      { signal: ac.signal },
    );
    let n = 0;
    try {
      for await (const _chunk of stream) {
        if (++n === 3) ac.abort();
      }
    } catch {
      // the client throws on abort
    }
    fake.setReply(undefined);
    await expect.poll(() => fake.abortedStreams).toBe(before + 1);
    await expect.poll(() => fake.activeStreams).toBe(0);
  });
});
