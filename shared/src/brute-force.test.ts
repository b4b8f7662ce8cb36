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
});
