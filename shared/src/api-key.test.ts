import { describe, expect, it } from "vitest";
import {
  API_KEY_LENGTH,
  API_KEY_PREFIX,
  apiKeyPrefix,
  checkApiKeyFormat,
  generateApiKey,
  hashApiKey,
} from "./api-key.js";
import { isId, newId } from "./ids.js";

describe("api key format", () => {
  it("mints llmp_ keys with a valid checksum, a 32-byte hash and a short public prefix", () => {
    const minted = generateApiKey();
    expect(minted.key).toMatch(/^llmp_[0-9A-Za-z]{38}$/);
    expect(minted.key).toHaveLength(API_KEY_LENGTH);
    expect(checkApiKeyFormat(minted.key)).toBeNull();
    expect(minted.hash).toHaveLength(32);
    expect(minted.hash.equals(hashApiKey(minted.key))).toBe(true);
    expect(minted.prefix).toBe(minted.key.slice(0, 13));
    expect(apiKeyPrefix(minted.key)).toBe(minted.prefix);
    expect(minted.prefix.length).toBeLessThan(minted.key.length / 2);
  });

  it("never repeats a key across many mints", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) seen.add(generateApiKey().key);
    expect(seen.size).toBe(5000);
  });

  it("rejects a missing, malformed or mistyped key before any lookup", () => {
    const { key } = generateApiKey();
    expect(checkApiKeyFormat(undefined)).toBe("missing");
    expect(checkApiKeyFormat("")).toBe("missing");
    expect(checkApiKeyFormat("sk-abc")).toBe("malformed");
    expect(checkApiKeyFormat(key.slice(0, -1))).toBe("malformed");
    expect(checkApiKeyFormat(key.replace(API_KEY_PREFIX, "llmx_"))).toBe("malformed");
    expect(checkApiKeyFormat(key.slice(0, 20) + "!" + key.slice(21))).toBe("malformed");
    // One changed body character: the checksum catches it.
    const i = 10;
    const swapped = key.slice(0, i) + (key[i] === "a" ? "b" : "a") + key.slice(i + 1);
    expect(checkApiKeyFormat(swapped)).toBe("bad_checksum");
  });

  it("hashes deterministically and distinctly", () => {
    expect(hashApiKey("llmp_a").equals(hashApiKey("llmp_a"))).toBe(true);
    expect(hashApiKey("llmp_a").equals(hashApiKey("llmp_b"))).toBe(false);
  });
});

describe("ids", () => {
  it("are type-prefixed, sortable by creation time, and recognised by type", () => {
    const a = newId("team", 1_700_000_000_000);
    const b = newId("team", 1_700_000_000_001);
    expect(a).toMatch(/^team_[0-9a-z]{26}$/);
    expect(a < b).toBe(true);
    expect(isId(a, "team")).toBe(true);
    expect(isId(a, "user")).toBe(false);
    expect(isId("team_nope", "team")).toBe(false);
    expect(isId(42, "team")).toBe(false);
  });

  it("made in the same millisecond share the time part, never the random one", () => {
    const ids = Array.from({ length: 1000 }, () => newId("req", 1_700_000_000_000));
    expect(new Set(ids.map((id) => id.slice(0, 14))).size).toBe(1);
    expect(ids[0]!.slice(0, 14)).toBe("req_01hf7yat00");
    expect(new Set(ids).size).toBe(1000);
    for (const id of ids) expect(isId(id, "req")).toBe(true);
    // Another millisecond gets its own time part.
    expect(newId("req", 1_700_000_000_001).slice(0, 14)).not.toBe(ids[0]!.slice(0, 14));
  });
});

describe("durations", async () => {
  const { parseDurationMs } = await import("./config-helpers.js");
  it("parse ms, s, m, h and d, and refuse anything else", () => {
    expect(parseDurationMs("500ms")).toBe(500);
    expect(parseDurationMs("10s")).toBe(10_000);
    expect(parseDurationMs("1.5m")).toBe(90_000);
    expect(parseDurationMs("1h")).toBe(3_600_000);
    expect(parseDurationMs("7d")).toBe(604_800_000);
    expect(parseDurationMs("7 days")).toBeUndefined();
    expect(parseDurationMs("-1s")).toBeUndefined();
    expect(parseDurationMs("")).toBeUndefined();
  });
});

describe("keys derived from a seed", async () => {
  const { apiKeyFromSeed } = await import("./api-key.js");
  it("are well formed, repeatable for one seed and distinct across seeds", () => {
    const a = apiKeyFromSeed(Buffer.from("seed-1"));
    expect(checkApiKeyFormat(a.key)).toBeNull();
    expect(apiKeyFromSeed(Buffer.from("seed-1")).key).toBe(a.key);
    expect(apiKeyFromSeed(Buffer.from("seed-2")).key).not.toBe(a.key);
  });
});
