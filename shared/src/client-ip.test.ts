import { describe, expect, it } from "vitest";
import {
  clientAddress,
  compileIpRules,
  normalizeAddress,
  parseIpRule,
  unparseableForwardedBucket,
} from "./client-ip.js";

describe("IPv4-mapped IPv6 addresses in any spelling", () => {
  it("normalize to the IPv4 address, so one peer is one brute-force bucket", () => {
    for (const form of [
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "::FFFF:7F00:0001",
      "0:0:0:0:0:ffff:7f00:1",
      "0000:0000:0000:0000:0000:ffff:7f00:0001",
      "::ffff:7f00:1%eth0",
    ]) {
      expect(normalizeAddress(form)).toBe("127.0.0.1");
    }
    // Not mapped: left alone.
    for (const other of ["::1", "2001:db8::ffff:7f00:1", "::ffff:0:7f00:1", "fe80::1", "10.0.0.1"])
      expect(normalizeAddress(other)).toBe(other);
  });

  it("in X-Forwarded-For from a trusted proxy, give the same client as the dotted form", () => {
    const trusted = compileIpRules([parseIpRule("10.0.0.0/8")!]);
    expect(clientAddress("10.0.0.5", "::ffff:c000:201", trusted)).toBe("192.0.2.1");
    expect(clientAddress("10.0.0.5", "192.0.2.1", trusted)).toBe("192.0.2.1");
  });
});

describe("unparseable forwarded addresses", () => {
  it("do not all share one bucket: each is keyed by the trusted hop that reported it and the entry", () => {
    const trusted = compileIpRules([parseIpRule("10.0.0.0/8")!]);
    expect(clientAddress("10.0.0.5", "unknown", trusted)).toBeNull();
    const a = unparseableForwardedBucket("10.0.0.5", "unknown");
    const b = unparseableForwardedBucket("10.0.0.6", "unknown");
    const c = unparseableForwardedBucket("10.0.0.5", "_hidden-client-7, 10.0.0.9");
    expect(new Set([a, b, c]).size).toBe(3);
    expect(c).toBe("unparseable:10.0.0.9:_hidden-client-7");
    expect(unparseableForwardedBucket("10.0.0.5", "x".repeat(10_000)).length).toBeLessThan(100);
  });
});
