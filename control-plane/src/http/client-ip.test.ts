import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../../test/test-control-plane.js";
import { TEST_MASTER_KEY } from "../../test/test-config.js";

/** The ingress of these tests: one loopback address (all of 127.0.0.0/8 reaches lo). */
const PROXY = "127.0.0.10";

interface Sent {
  from: string;
  forwardedFor?: string;
  path?: string;
  key?: string;
  /** JSON body: a POST. */
  body?: unknown;
}

function send(port: number, { from, forwardedFor, path = "/internal/teams", key, body }: Sent): Promise<number> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: payload ? "POST" : "GET",
        localAddress: from,
        headers: {
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(forwardedFor ? { "x-forwarded-for": forwardedFor } : {}),
          ...(payload ? { "content-type": "application/json" } : {}),
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode!));
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

async function blockedTargets(base: string): Promise<string[]> {
  const audit = await fetch(`${base}/internal/audit-logs?action=auth.client_blocked`, {
    headers: { authorization: `Bearer ${TEST_MASTER_KEY}` },
  }).then((r) => r.json() as Promise<{ data: Array<{ target_id: string }> }>);
  return audit.data.map((a) => a.target_id).sort();
}

describe("control plane behind a trusted proxy (TRUSTED_PROXIES)", () => {
  let t: TestControlPlane;
  beforeAll(async () => {
    t = await startTestControlPlane({
      trustedProxies: [PROXY],
      bruteForce: { enabled: true, maxFailedAttempts: 3, ttlMs: 60_000 },
    });
  });
  afterAll(() => t?.stop());

  it("blocks the client X-Forwarded-For names, not the proxy: other clients behind it go on", async () => {
    for (let i = 0; i < 3; i++) {
      expect(await send(t.port, { from: PROXY, forwardedFor: "203.0.113.5", key: "wrong-master-key" })).toBe(401);
    }
    expect(await send(t.port, { from: PROXY, forwardedFor: "203.0.113.5", key: TEST_MASTER_KEY })).toBe(429);
    // The dashboard sign-in shares the budget, and sees the same client.
    const signIn = { from: PROXY, forwardedFor: "203.0.113.5", path: "/internal/sessions" };
    expect(await send(t.port, { ...signIn, body: { credential: TEST_MASTER_KEY } })).toBe(429);
    expect(await send(t.port, { from: PROXY, forwardedFor: "203.0.113.6", key: TEST_MASTER_KEY })).toBe(200);
    // A client-written entry left of the proxy's is never believed: it cannot escape its block.
    expect(await send(t.port, { from: PROXY, forwardedFor: "198.51.100.9, 203.0.113.5", key: TEST_MASTER_KEY })).toBe(
      429,
    );
    expect(await blockedTargets(t.base)).toEqual(["203.0.113.5"]);
  });

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy", async () => {
    for (const forged of ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) {
      expect(await send(t.port, { from: "127.0.0.11", forwardedFor: forged, key: "wrong-master-key" })).toBe(401);
    }
    expect(await send(t.port, { from: "127.0.0.11", forwardedFor: "192.0.2.4", key: TEST_MASTER_KEY })).toBe(429);
    expect(await blockedTargets(t.base)).toEqual(["127.0.0.11", "203.0.113.5"]);
  });
});

describe("control plane without TRUSTED_PROXIES (the default)", () => {
  let t: TestControlPlane;
  beforeAll(async () => {
    t = await startTestControlPlane({ bruteForce: { enabled: true, maxFailedAttempts: 3, ttlMs: 60_000 } });
  });
  afterAll(() => t?.stop());

  it("never believes X-Forwarded-For: behind a proxy every client shares the proxy's address", async () => {
    for (const client of ["203.0.113.1", "203.0.113.2", "203.0.113.3"]) {
      expect(await send(t.port, { from: PROXY, forwardedFor: client, key: "wrong-master-key" })).toBe(401);
    }
    // Three clients' bad keys, one bucket: a fourth client with the right key is blocked too.
    expect(await send(t.port, { from: PROXY, forwardedFor: "203.0.113.4", key: TEST_MASTER_KEY })).toBe(429);
    expect(await blockedTargets(t.base)).toEqual([PROXY]);
  });
});
