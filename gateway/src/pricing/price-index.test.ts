import { describe, expect, it } from "vitest";
import { PriceIndex, undatedModel, type PriceRule } from "./price-index.js";
import { requestCostMicroUsd } from "./request-cost.js";

function rule(
  provider: string,
  model: string,
  input: number,
  output = input * 4,
  extra: Partial<PriceRule> = {},
): PriceRule {
  return {
    provider,
    model,
    inputUsdPerMtok: input,
    outputUsdPerMtok: output,
    cacheReadUsdPerMtok: null,
    cacheWriteUsdPerMtok: null,
    source: "default",
    ...extra,
  };
}

function index(...rules: PriceRule[]): PriceIndex {
  const i = new PriceIndex();
  i.replaceAll(rules);
  return i;
}

const inputOf = (i: PriceIndex, provider: string, model: string) => i.lookup(provider, model)?.inputUsdPerMtok;

describe("PriceIndex lookup", () => {
  it("prefers the exact name, then the longest prefix rule, then the provider's * rule", () => {
    const i = index(
      rule("openai", "*", 99),
      rule("openai", "gpt-4o*", 3),
      rule("openai", "gpt-4o-mini*", 2),
      rule("openai", "gpt-4o-mini", 1),
    );
    expect(inputOf(i, "openai", "gpt-4o-mini")).toBe(1);
    expect(inputOf(i, "openai", "gpt-4o-mini-search-preview")).toBe(2);
    expect(inputOf(i, "openai", "gpt-4o-audio")).toBe(3);
    expect(inputOf(i, "openai", "o3")).toBe(99);
    expect(inputOf(i, "anthropic", "gpt-4o-mini")).toBeUndefined();
  });

  it("keeps the longest prefix first whatever order the rules arrive in", () => {
    const i = new PriceIndex();
    i.upsert(rule("anthropic", "claude-opus-5-5-*", 4));
    i.upsert(rule("anthropic", "claude-*", 1));
    i.upsert(rule("anthropic", "claude-opus-5-*", 5));
    expect(inputOf(i, "anthropic", "claude-opus-5-5-20260101")).toBe(4);
    expect(inputOf(i, "anthropic", "claude-opus-5-20260101")).toBe(5);
    expect(inputOf(i, "anthropic", "claude-haiku")).toBe(1);
  });

  it("matches dated variants to the undated name", () => {
    const i = index(
      rule("openai", "gpt-4o", 2.5),
      rule("openai", "gpt-4", 30),
      rule("anthropic", "claude-sonnet-4", 3),
    );
    expect(inputOf(i, "openai", "gpt-4o-2024-08-06")).toBe(2.5);
    expect(inputOf(i, "openai", "gpt-4-0613")).toBe(30);
    expect(inputOf(i, "anthropic", "claude-sonnet-4-20250514")).toBe(3);
    expect(inputOf(i, "anthropic", "claude-sonnet-4@20250514")).toBe(3);
    // Not a date: no match.
    expect(inputOf(i, "openai", "gpt-4o-9999")).toBeUndefined();
    expect(inputOf(i, "openai", "gpt-4o-mini")).toBeUndefined();
  });

  it("an exact price for a dated name wins over its undated name", () => {
    const i = index(rule("openai", "gpt-4o", 2.5), rule("openai", "gpt-4o-2024-05-13", 5));
    expect(inputOf(i, "openai", "gpt-4o-2024-05-13")).toBe(5);
    expect(inputOf(i, "openai", "gpt-4o-2024-11-20")).toBe(2.5);
  });

  it("falls back from azure-openai to openai, and to provider * last", () => {
    const i = index(rule("openai", "gpt-4o", 2.5), rule("*", "*", 7), rule("*", "llama-3*", 0.5));
    expect(inputOf(i, "azure-openai", "gpt-4o")).toBe(2.5);
    expect(inputOf(i, "gemini", "llama-3.1-70b")).toBe(0.5);
    expect(inputOf(i, "mock", "anything")).toBe(7);
    i.upsert(rule("azure-openai", "gpt-4o", 3));
    expect(inputOf(i, "azure-openai", "gpt-4o")).toBe(3);
  });

  it("sees upserts and deletes at once (no stale memo)", () => {
    const i = index(rule("openai", "gpt-4o", 2.5));
    expect(inputOf(i, "openai", "gpt-4o-2024-08-06")).toBe(2.5);
    i.upsert(rule("openai", "gpt-4o", 1, 4, { source: "override" }));
    expect(i.lookup("openai", "gpt-4o-2024-08-06")).toMatchObject({ inputUsdPerMtok: 1, source: "override" });
    expect(i.size).toBe(1);
    expect(i.delete("openai", "gpt-4o")).toBe(true);
    expect(i.lookup("openai", "gpt-4o-2024-08-06")).toBeUndefined();
    expect(i.size).toBe(0);
    i.upsert(rule("openai", "gpt-*", 9));
    expect(inputOf(i, "openai", "gpt-4o")).toBe(9);
    expect(i.delete("openai", "gpt-*")).toBe(true);
    expect(inputOf(i, "openai", "gpt-4o")).toBeUndefined();
    expect(i.delete("openai", "gpt-*")).toBe(false);
  });

  it("undatedModel strips only date suffixes", () => {
    expect(undatedModel("gpt-4o-2024-08-06")).toBe("gpt-4o");
    expect(undatedModel("claude-3-5-sonnet-20241022")).toBe("claude-3-5-sonnet");
    expect(undatedModel("gpt-3.5-turbo-0125")).toBe("gpt-3.5-turbo");
    expect(undatedModel("gpt-4o")).toBeUndefined();
    expect(undatedModel("gemini-embedding-001")).toBeUndefined();
    expect(undatedModel("model-1399")).toBeUndefined();
  });
});

describe("PriceIndex cost", () => {
  const i = index(
    rule("anthropic", "claude-sonnet-4", 3, 15, { cacheReadUsdPerMtok: 0.3, cacheWriteUsdPerMtok: 3.75 }),
    rule("openai", "gpt-4o-mini", 0.15, 0.6),
  );

  it("is integer micro-USD: a token at X USD per million costs X micro-USD", () => {
    expect(i.costMicroUsd("anthropic", "claude-sonnet-4", { promptTokens: 1000, completionTokens: 200 })).toBe(
      3000 + 3000,
    );
    expect(i.costMicroUsd("openai", "gpt-4o-mini", { promptTokens: 1_000_000, completionTokens: 1_000_000 })).toBe(
      750_000,
    );
    // 0.15 × 7 + 0.6 × 3 = 2.85 → 3
    expect(i.costMicroUsd("openai", "gpt-4o-mini", { promptTokens: 7, completionTokens: 3 })).toBe(3);
  });

  it("prices cache reads and writes at their rates, or at the input rate when the model has none", () => {
    expect(
      i.costMicroUsd("anthropic", "claude-sonnet-4", {
        promptTokens: 100,
        completionTokens: 10,
        cacheReadTokens: 1000,
        cacheWriteTokens: 1000,
      }),
    ).toBe(300 + 150 + 300 + 3750);
    expect(
      i.costMicroUsd("openai", "gpt-4o-mini", { promptTokens: 0, completionTokens: 0, cacheReadTokens: 1000 }),
    ).toBe(150);
  });

  it("is null when no price is known, and counts missing token counts as 0", () => {
    expect(i.costMicroUsd("openai", "unknown-model", { promptTokens: 10, completionTokens: 10 })).toBeNull();
    expect(i.costMicroUsd("openai", "gpt-4o-mini", { promptTokens: null, completionTokens: 1000 })).toBe(600);
    expect(i.costMicroUsd("openai", "gpt-4o-mini", { promptTokens: -5, completionTokens: Number.NaN })).toBe(0);
  });

  it("estimates a reservation from the prompt and max output tokens, rounded up", () => {
    expect(i.estimateMicroUsd("anthropic", "claude-sonnet-4-20250514", 1000, 4096)).toBe(3000 + 61_440);
    // 0.15 × 1 + 0.6 × 1 = 0.75 → 1 (never under-reserve)
    expect(i.estimateMicroUsd("openai", "gpt-4o-mini", 1, 1)).toBe(1);
    // 0.1 × 30 is 3.0000000000000004 in floating point: still 3.
    expect(index(rule("openai", "x", 0.1, 0)).estimateMicroUsd("openai", "x", 30, 0)).toBe(3);
    expect(i.estimateMicroUsd("openai", "unknown-model", 1000, 1000)).toBeNull();
  });
});

describe("requestCostMicroUsd", () => {
  const ctx = {
    prices: index(rule("anthropic", "claude-sonnet-4-5", 3, 15), rule("openai", "gpt-4o", 2.5, 10)),
    providers: {
      providers: [
        { name: "claude", kind: "anthropic" },
        { name: "oai", kind: "openai" },
      ],
    },
  } as unknown as Parameters<typeof requestCostMicroUsd>[0];
  const usage = (promptTokens: number, completionTokens: number, cacheReadTokens: number | null = null) => ({
    promptTokens,
    completionTokens,
    totalTokens: promptTokens + completionTokens,
    cacheReadTokens,
    cacheWriteTokens: null,
  });

  it("prices by the model sent upstream, so a routing prefix cannot dodge a budget", () => {
    const rec = {
      provider: "claude",
      model: "anthropic/claude-sonnet-4-5",
      upstreamModel: "claude-sonnet-4-5",
      usage: usage(1000, 100),
    };
    expect(requestCostMicroUsd(ctx, rec)).toBe(1000 * 3 + 100 * 15);
    expect(requestCostMicroUsd(ctx, { ...rec, upstreamModel: undefined })).toBeNull();
  });

  it("bills OpenAI's cached prompt tokens once, at the cache rate (the input rate without one)", () => {
    const rec = { provider: "oai", model: "gpt-4o", usage: usage(1000, 0, 400) };
    expect(requestCostMicroUsd(ctx, rec)).toBe(600 * 2.5 + 400 * 2.5);
  });
});
