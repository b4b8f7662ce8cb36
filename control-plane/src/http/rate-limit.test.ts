import { describe, expect, it } from "vitest";
import { addressBucket } from "@tollgate/shared";
import { ClientRateLimiter } from "./rate-limit.js";

describe("ClientRateLimiter", () => {
  it("allows perMinute calls at once, then refills one every 60/perMinute s", () => {
    let now = 1_000_000;
    const limiter = new ClientRateLimiter(6, 100, () => now);
    for (let i = 0; i < 6; i++) expect(limiter.take("10.0.0.1")).toBe(0);
    expect(limiter.take("10.0.0.1")).toBe(10);
    expect(limiter.take("10.0.0.2")).toBe(0); // another address has its own bucket
    now += 9_000;
    expect(limiter.take("10.0.0.1")).toBe(1);
    now += 1_000;
    expect(limiter.take("10.0.0.1")).toBe(0);
    expect(limiter.take("10.0.0.1")).toBe(10);
    now += 10 * 60_000;
    for (let i = 0; i < 6; i++) expect(limiter.take("10.0.0.1")).toBe(0); // never more than a full bucket
    expect(limiter.take("10.0.0.1")).toBeGreaterThan(0);
  });

  it("keeps at most maxClients buckets, dropping the least recently used", () => {
    const now = 0;
    const limiter = new ClientRateLimiter(1, 3, () => now);
    for (const ip of ["a", "b", "c"]) expect(limiter.take(ip)).toBe(0);
    expect(limiter.take("a")).toBeGreaterThan(0); // touches a: b is now the oldest
    expect(limiter.take("d")).toBe(0);
    expect(limiter.size).toBe(3);
    expect(limiter.take("b")).toBe(0); // b was dropped, so it starts full again
    expect(limiter.take("a")).toBeGreaterThan(0); // a was kept
  });

  it("counts an IPv6 client by its /64, and an IPv4 client by its address", () => {
    expect(addressBucket("10.1.2.3")).toBe("10.1.2.3");
    expect(addressBucket("::ffff:10.1.2.3")).toBe("10.1.2.3");
    expect(addressBucket("2001:db8:0:1:aaaa::1")).toBe("2001:db8:0:1::/64");
    expect(addressBucket("2001:DB8:0000:0001:ffff:ffff:ffff:ffff")).toBe("2001:db8:0:1::/64");
    expect(addressBucket("::1")).toBe("0:0:0:0::/64");
    expect(addressBucket("::ffff:7f00:1")).toBe("127.0.0.1");
    expect(addressBucket("fe80::")).toBe("fe80:0:0:0::/64");
    const limiter = new ClientRateLimiter(1, 100, () => 0);
    expect(limiter.take("2001:db8:0:1::a")).toBe(0);
    expect(limiter.take("2001:db8:0:1::b")).toBeGreaterThan(0); // the same /64
    expect(limiter.take("2001:db8:0:2::a")).toBe(0);
  });
});
