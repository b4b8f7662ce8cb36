import { describe, expect, it } from "vitest";
import { toStoredKey } from "../db/synced-records.js";
import { type KeyOverrides, makeKey } from "@tollgate/testkit";
import { clientAddress, compileIpRules, ipInList, normalizeAddress, parseIpRule } from "@tollgate/shared";
import { compileKey, type KeyRecord } from "./key-index.js";
import { MAX_GLOB_MATCHED_MODEL_LENGTH, compileModelMatcher, modelAllowed } from "./model-matcher.js";
import { checkIp, checkModel, checkProvider } from "./policy.js";

function record(overrides: KeyOverrides): KeyRecord {
  return compileKey(toStoredKey(makeKey(overrides).upsert)).record;
}

describe("model globs", () => {
  const allows = (patterns: string[], model: string) => modelAllowed(compileModelMatcher(patterns), model);

  it("matches exact names only exactly", () => {
    expect(allows(["gpt-4o"], "gpt-4o")).toBe(true);
    expect(allows(["gpt-4o"], "gpt-4o-mini")).toBe(false);
    expect(allows(["gpt-4o"], "GPT-4o")).toBe(false);
    expect(allows(["gpt-4o"], "xgpt-4o")).toBe(false);
  });

  it("treats * as any run of characters, anchored at both ends", () => {
    expect(allows(["gpt-4o*"], "gpt-4o")).toBe(true);
    expect(allows(["gpt-4o*"], "gpt-4o-mini-2024-07-18")).toBe(true);
    expect(allows(["gpt-4o*"], "gpt-4")).toBe(false);
    expect(allows(["gpt-4o*"], "my-gpt-4o")).toBe(false);
    expect(allows(["*-mini"], "gpt-4o-mini")).toBe(true);
    expect(allows(["*"], "anything at all")).toBe(true);
  });

  it("treats ? as exactly one character", () => {
    expect(allows(["gpt-?o"], "gpt-4o")).toBe(true);
    expect(allows(["gpt-?o"], "gpt-o")).toBe(false);
    expect(allows(["gpt-?o"], "gpt-44o")).toBe(false);
    expect(allows(["model-?"], "model-é")).toBe(true);
    expect(allows(["model-?"], "model-😀")).toBe(true);
  });

  it("escapes everything else: a dot is a dot", () => {
    expect(allows(["claude-3.5-*"], "claude-3.5-sonnet")).toBe(true);
    expect(allows(["claude-3.5-*"], "claude-3x5-sonnet")).toBe(false);
    expect(allows(["a+b(c)|d$*"], "a+b(c)|d$e")).toBe(true);
    expect(allows(["a+b(c)|d$*"], "aab(c)|d$e")).toBe(false);
    expect(allows(["models/gpt-*"], "models/gpt-4")).toBe(true);
    expect(allows(["a.b*c?"], "a.bxxcy")).toBe(true);
    expect(allows(["a.b*c?"], "axbxxcy")).toBe(false);
    expect(allows(["[a-z]*"], "[a-z]x")).toBe(true);
    expect(allows(["[a-z]*"], "bx")).toBe(false);
  });

  it("backtracks correctly across several stars", () => {
    expect(allows(["a*b*c"], "aXbYbZc")).toBe(true);
    expect(allows(["a*b*c"], "aXbYbZcd")).toBe(false);
    expect(allows(["*a*a*"], "bab")).toBe(false);
    expect(allows(["*a*a*"], "baba")).toBe(true);
    expect(allows(["**"], "")).toBe(true);
    expect(allows(["?*?"], "x")).toBe(false);
    expect(allows(["?*?"], "xy")).toBe(true);
  });

  it("stays fast on hostile model names, which a backtracking regular expression would not", () => {
    const started = performance.now();
    expect(allows(["gpt-*-*-*-*-x"], `gpt-${"-".repeat(MAX_GLOB_MATCHED_MODEL_LENGTH - 4)}`)).toBe(false);
    expect(allows(["gpt-*-*-*-*-x"], `gpt-${"-".repeat(4_000_000)}`)).toBe(false);
    expect(performance.now() - started).toBeLessThan(200);
    // Over the limit a name matches no glob, but still an exact pattern.
    const long = `gpt-${"4".repeat(MAX_GLOB_MATCHED_MODEL_LENGTH)}`;
    expect(allows(["gpt-*"], long)).toBe(false);
    expect(allows(["gpt-*", long], long)).toBe(true);
  });

  it("combines exact names and globs; an empty list allows everything", () => {
    const m = compileModelMatcher(["gpt-4o*", "claude-3-5-sonnet-latest"]);
    expect(m?.exact).toEqual(new Set(["claude-3-5-sonnet-latest"]));
    expect(modelAllowed(m, "claude-3-5-sonnet-latest")).toBe(true);
    expect(modelAllowed(m, "gpt-4o-mini")).toBe(true);
    expect(modelAllowed(m, "gpt-4")).toBe(false);
    expect(compileModelMatcher([])).toBeNull();
    expect(modelAllowed(null, "whatever")).toBe(true);
  });
});

describe("IP rules", () => {
  it("parses addresses and CIDRs of both families, and refuses the rest", () => {
    expect(parseIpRule("10.0.0.1")).toEqual({ address: "10.0.0.1", family: "ipv4" });
    expect(parseIpRule("10.0.0.0/8")).toEqual({ address: "10.0.0.0", family: "ipv4", prefix: 8 });
    expect(parseIpRule("2001:db8::/32")).toEqual({ address: "2001:db8::", family: "ipv6", prefix: 32 });
    expect(parseIpRule("::ffff:10.0.0.1")).toEqual({ address: "10.0.0.1", family: "ipv4" });
    expect(parseIpRule("::ffff:10.0.0.0/104")).toEqual({ address: "::ffff:10.0.0.0", family: "ipv6", prefix: 104 });
    for (const bad of [
      "",
      "10.0.0",
      "10.0.0.0/33",
      "2001:db8::/129",
      "10.0.0.0/x",
      "example.com",
      "10.0.0.0/8/9",
      "10.0.0.0/",
    ]) {
      expect(parseIpRule(bad)).toBeUndefined();
    }
  });

  const list = compileIpRules(["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "fd00::1"].map((r) => parseIpRule(r)!));

  it("matches IPv4 addresses and subnets", () => {
    expect(ipInList(list, "10.255.0.3")).toBe(true);
    expect(ipInList(list, "192.168.1.7")).toBe(true);
    expect(ipInList(list, "192.168.1.8")).toBe(false);
    expect(ipInList(list, "11.0.0.1")).toBe(false);
  });

  it("matches IPv6 addresses and subnets, in any spelling", () => {
    expect(ipInList(list, "2001:db8:1234::9")).toBe(true);
    expect(ipInList(list, "2001:0db8:0000:0000:0000:0000:0000:0001")).toBe(true);
    expect(ipInList(list, "2001:db9::1")).toBe(false);
    expect(ipInList(list, "fd00::1")).toBe(true);
    expect(ipInList(list, "fd00:0:0:0:0:0:0:1")).toBe(true);
    expect(ipInList(list, "fd00::2")).toBe(false);
  });

  it("matches IPv4 peers against an IPv4-mapped IPv6 subnet", () => {
    const mapped = compileIpRules([parseIpRule("::ffff:10.0.0.0/104")!]);
    expect(ipInList(mapped, "10.0.0.7")).toBe(true);
    expect(ipInList(mapped, "::ffff:10.0.0.7")).toBe(true);
    expect(ipInList(mapped, "11.0.0.7")).toBe(false);
  });

  it("matches an IPv4-mapped IPv6 socket address against IPv4 rules", () => {
    expect(normalizeAddress("::ffff:10.0.0.1")).toBe("10.0.0.1");
    expect(normalizeAddress("::FFFF:10.0.0.1")).toBe("10.0.0.1");
    expect(ipInList(list, "::ffff:10.0.0.1")).toBe(true);
    expect(ipInList(list, "::ffff:192.168.1.7")).toBe(true);
    expect(ipInList(list, "::ffff:11.0.0.1")).toBe(false);
  });

  it("never matches something that is not an address", () => {
    expect(ipInList(list, "")).toBe(false);
    expect(ipInList(list, "10.0.0.1, 10.0.0.2")).toBe(false);
    expect(ipInList(list, "unknown")).toBe(false);
  });
});

describe("client address and X-Forwarded-For", () => {
  const trusted = compileIpRules(["10.0.0.0/8", "fd00::/8"].map((r) => parseIpRule(r)!));

  it("uses the socket's peer and ignores X-Forwarded-For when nothing is trusted", () => {
    expect(clientAddress("203.0.113.9", "10.1.2.3", null)).toBe("203.0.113.9");
    expect(clientAddress("::ffff:203.0.113.9", undefined, null)).toBe("203.0.113.9");
    expect(clientAddress(undefined, "10.1.2.3", null)).toBeNull();
  });

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy (spoofing)", () => {
    expect(clientAddress("203.0.113.9", "10.1.2.3", trusted)).toBe("203.0.113.9");
  });

  it("takes the rightmost address that is not a trusted proxy", () => {
    expect(clientAddress("10.0.0.2", "198.51.100.4", trusted)).toBe("198.51.100.4");
    // A client-supplied entry to the left of the one the proxy appended is never believed.
    expect(clientAddress("10.0.0.2", "192.168.1.7, 198.51.100.4", trusted)).toBe("198.51.100.4");
    // Two proxies: the inner one's address is skipped.
    expect(clientAddress("10.0.0.2", "198.51.100.4, 10.9.9.9", trusted)).toBe("198.51.100.4");
    expect(clientAddress("::ffff:10.0.0.2", "198.51.100.4", trusted)).toBe("198.51.100.4");
    expect(clientAddress("fd00::5", "2001:db8::7", trusted)).toBe("2001:db8::7");
    // Several header lines, as Node keeps them for a list-valued header.
    expect(clientAddress("10.0.0.2", ["192.168.1.7", "198.51.100.4"], trusted)).toBe("198.51.100.4");
  });

  it("reads addresses with ports and brackets, and mapped forms", () => {
    expect(clientAddress("10.0.0.2", "198.51.100.4:5123", trusted)).toBe("198.51.100.4");
    expect(clientAddress("10.0.0.2", "[2001:db8::7]:443", trusted)).toBe("2001:db8::7");
    expect(clientAddress("10.0.0.2", "::ffff:198.51.100.4", trusted)).toBe("198.51.100.4");
  });

  it("falls back to the leftmost address when every hop is trusted, and to the peer without the header", () => {
    expect(clientAddress("10.0.0.2", "10.0.0.9, 10.0.0.3", trusted)).toBe("10.0.0.9");
    expect(clientAddress("10.0.0.2", undefined, trusted)).toBe("10.0.0.2");
    expect(clientAddress("10.0.0.2", "", trusted)).toBe("10.0.0.2");
  });

  it("is unknown (null) when the entry it must believe is garbage", () => {
    expect(clientAddress("10.0.0.2", "not-an-ip", trusted)).toBeNull();
    // Garbage left of the first untrusted address is never looked at.
    expect(clientAddress("10.0.0.2", "not-an-ip, 198.51.100.4", trusted)).toBe("198.51.100.4");
  });
});

describe("scope checks", () => {
  it("names the provider rule", () => {
    const key = record({ allowedProviders: ["openai", "anthropic"] });
    expect(checkProvider(key, "openai")).toBeNull();
    expect(checkProvider(key, "mock")).toEqual({
      rule: "provider",
      code: "provider_not_allowed",
      message: "This API key may not use provider 'mock' (allowed_providers: openai, anthropic).",
      param: null,
    });
    expect(checkProvider(record({}), "mock")).toBeNull();
  });

  it("names the model rule", () => {
    const key = record({ allowedModels: ["gpt-4o*", "claude-3-5-sonnet-latest"] });
    expect(checkModel(key, "gpt-4o-mini")).toBeNull();
    expect(checkModel(key, "gpt-4")).toEqual({
      rule: "model",
      code: "model_not_allowed",
      message: "This API key may not use model 'gpt-4' (allowed_models: gpt-4o*, claude-3-5-sonnet-latest).",
      param: "model",
    });
    const many = record({ allowedModels: Array.from({ length: 25 }, (_, i) => `m${i}`) });
    expect(checkModel(many, "x")?.message).toContain("m19, and 5 more).");
  });

  it("names the IP rule, and refuses an unknown address", () => {
    const key = record({ ipAllowlist: ["10.0.0.0/8", "2001:db8::/32"] });
    expect(checkIp(key, "10.1.2.3")).toBeNull();
    expect(checkIp(key, "::ffff:10.1.2.3")).toBeNull();
    expect(checkIp(key, "203.0.113.9")).toEqual({
      rule: "ip",
      code: "ip_not_allowed",
      message: "Requests from 203.0.113.9 are not allowed for this API key (ip_allowlist).",
      param: null,
    });
    expect(checkIp(key, null)?.code).toBe("ip_not_allowed");
    expect(checkIp(record({}), null)).toBeNull();
  });

  it("refuses to compile an allowlist entry that is not an address", () => {
    expect(() => record({ ipAllowlist: ["10.0.0.0/8", "nope"] })).toThrow(/ip_allowlist entry "nope"/);
  });
});
