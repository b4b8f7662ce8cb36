import { describe, expect, it } from "vitest";
import { BruteForceGuard } from "./brute-force.js";

describe("brute-force guard", () => {
  it("blocks a client after max failures within the window, until the block ends", () => {
    let now = 0;
    const g = new BruteForceGuard({ enabled: true, maxFailedAttempts: 3, ttlMs: 60_000, now: () => now });
    expect(g.recordFailure("1.2.3.4")).toBe(false);
    expect(g.recordFailure("1.2.3.4")).toBe(false);
    expect(g.retryAfterSeconds("1.2.3.4")).toBe(0);
    expect(g.recordFailure("1.2.3.4")).toBe(true);
    expect(g.retryAfterSeconds("1.2.3.4")).toBe(60);
    expect(g.retryAfterSeconds("5.6.7.8")).toBe(0);
    expect(g.blockedCount()).toBe(1);
    now = 30_500;
    expect(g.retryAfterSeconds("1.2.3.4")).toBe(30);
    now = 60_001;
    expect(g.retryAfterSeconds("1.2.3.4")).toBe(0);
  });

  it("forgets failures older than the window and stays bounded", () => {
    let now = 0;
    const g = new BruteForceGuard({ enabled: true, maxFailedAttempts: 2, ttlMs: 1000, maxEntries: 10, now: () => now });
    g.recordFailure("a");
    now = 2000;
    expect(g.recordFailure("a")).toBe(false);
    for (let i = 0; i < 100; i++) g.recordFailure(`c${i}`);
    expect(g.blockedCount()).toBe(0);
  });

  it("does nothing when disabled", () => {
    const g = new BruteForceGuard({ enabled: false, maxFailedAttempts: 1, ttlMs: 1000 });
    expect(g.recordFailure("a")).toBe(false);
    expect(g.retryAfterSeconds("a")).toBe(0);
  });

  it("keeps a block whatever failures from many other addresses do to the failure table", () => {
    let now = 0;
    const g = new BruteForceGuard({
      enabled: true,
      maxFailedAttempts: 2,
      ttlMs: 60_000,
      maxEntries: 100,
      now: () => now,
    });
    g.recordFailure("attacker");
    expect(g.recordFailure("attacker")).toBe(true);
    for (let i = 0; i < 100_000; i++) g.recordFailure(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    now = 1_000;
    expect(g.retryAfterSeconds("attacker")).toBe(59);
  });

  it("bounds the blocks themselves, evicting the block that ends soonest", () => {
    let now = 0;
    const g = new BruteForceGuard({
      enabled: true,
      maxFailedAttempts: 1,
      ttlMs: 60_000,
      maxBlocked: 3,
      now: () => now,
    });
    for (const c of ["a", "b", "c", "d"]) {
      now += 1;
      expect(g.recordFailure(c)).toBe(true);
    }
    expect(g.blockedCount()).toBe(3);
    expect(g.retryAfterSeconds("a")).toBe(0);
    expect(g.retryAfterSeconds("d")).toBe(60);
  });
});
