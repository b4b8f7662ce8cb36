import { CounterKind, createLogger } from "@tollgate/shared";
import { describe, expect, it } from "vitest";
import { reserve } from "./enforce.js";
import { estimatePromptTokens, promptTokensBound, SIZE_BOUND_MIN_BYTES, warmTokenizer } from "./estimate.js";
import type { PriceLookup } from "./gateway-quota.js";
import { Reservation } from "./lease.js";
import type { LimitSpec } from "./limits.js";
import { QuotaManager } from "./quota-manager.js";
import type { QuotaRpc } from "./quota-rpc.js";

const logger = createLogger({ name: "test", level: "silent" });
const clock = { now: () => 1_700_000_010_000 };
const prices = { estimateMicroUsd: () => null } as unknown as PriceLookup;

/** One gateway alone: every grant is what it asks, up to what the capacity has left. */
const soloRpc: QuotaRpc = {
  async acquire(statements) {
    const grants = statements.map((s) => {
      const held = Math.max(0, Math.min(s.wantHeld, s.capacity - s.consumed));
      return { counter: s.counter, window: s.window, held, fleetUsed: s.consumed + held };
    });
    return { grants, activeGateways: 1 };
  },
};

const tpm = (capacity: number): LimitSpec => ({
  counter: "team:team_01m82rqbx8yf52wdjthym6nj5k:tpm",
  scope: "team",
  metric: "tpm",
  capacity,
  kind: CounterKind.WINDOW,
  period: "minute",
});

function manager(): QuotaManager {
  const m = new QuotaManager(clock, logger, { prefetchFraction: 0.5 });
  m.setRpc(soloRpc);
  return m;
}

/** A chat body of about `bytes` of JSON, and its parsed form. */
function chat(bytes: number): { json: Record<string, unknown>; size: number } {
  const json = {
    model: "gpt-4o-mini",
    max_tokens: 100,
    messages: [{ role: "user", content: "hello world ".repeat(bytes / 12) }],
  };
  return { json, size: Buffer.byteLength(JSON.stringify(json)) };
}

const amount = (r: unknown) => (r as Reservation).taken[0]!.amount;

describe("reserving a large prompt", () => {
  it("reserves its size bound, never below its estimate, when the gateway holds that much", async () => {
    await warmTokenizer();
    const m = manager();
    const { json, size } = chat(64 * 1024);
    expect(size).toBeGreaterThanOrEqual(SIZE_BOUND_MIN_BYTES);
    expect(await reserve(m, prices, [tpm(100_000_000)], "openai", "gpt-4o-mini", json, size)).toBeInstanceOf(
      Reservation,
    );
    const r = reserve(m, prices, [tpm(100_000_000)], "openai", "gpt-4o-mini", json, size);
    // From memory (no lease to fetch), at the bound: more than the count it skipped.
    expect(r).toBeInstanceOf(Reservation);
    expect(amount(r)).toBe(promptTokensBound(size) + 100);
    expect(promptTokensBound(size)).toBeGreaterThan(estimatePromptTokens(json));
  });

  it("counts the prompt near a limit, so a request the bound would not fit is admitted as before", async () => {
    await warmTokenizer();
    const m = manager();
    const { json, size } = chat(64 * 1024);
    const exact = estimatePromptTokens(json) + 100;
    // Room for the counted prompt, not for the size bound.
    const capacity = exact + 1_000;
    expect(promptTokensBound(size) + 100).toBeGreaterThan(capacity);
    const r = await reserve(m, prices, [tpm(capacity)], "openai", "gpt-4o-mini", json, size);
    expect(r).toBeInstanceOf(Reservation);
    expect(amount(r)).toBe(exact);
    // And refused as before when the counted prompt does not fit either.
    expect(await reserve(m, prices, [tpm(capacity)], "openai", "gpt-4o-mini", json, size)).toMatchObject({
      refused: true,
    });
  });
});
