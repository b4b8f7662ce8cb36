import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControlPlane } from "../index.js";
import { startTestControlPlane, type TestControlPlane } from "../../test/test-control-plane.js";
import { TEST_MASTER_KEY } from "../../test/test-config.js";

let test: TestControlPlane;
let cp: ControlPlane;
let port: number;

/** GET /internal/teams from a chosen loopback address (all of 127.0.0.0/8 reaches lo). */
function get(from: string, key: string): Promise<{ status: number; retryAfter: string | undefined; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: "/internal/teams",
        localAddress: from,
        headers: { authorization: `Bearer ${key}` },
      },
      (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () =>
          resolve({
            status: res.statusCode!,
            retryAfter: res.headers["retry-after"] as string | undefined,
            body: JSON.parse(text),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

beforeAll(async () => {
  test = await startTestControlPlane({ bruteForce: { enabled: true, maxFailedAttempts: 3, ttlMs: 60_000 } });
  cp = test.cp;
  port = test.port;
});

afterAll(async () => {
  await test?.stop();
});

describe("admin API brute-force protection", () => {
  it("blocks an address after repeated invalid master keys, with Retry-After, audited, while other addresses go on", async () => {
    for (let i = 0; i < 3; i++) expect((await get("127.0.0.2", "wrong-master-key")).status).toBe(401);
    const blocked = await get("127.0.0.2", TEST_MASTER_KEY);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.retryAfter)).toBeGreaterThan(50);
    expect(blocked.body.error.code).toBe("too_many_requests");
    expect((await get("127.0.0.3", TEST_MASTER_KEY)).status).toBe(200);

    const audit = await fetch(`http://127.0.0.1:${port}/internal/audit-logs?action=auth.client_blocked`, {
      headers: { authorization: `Bearer ${TEST_MASTER_KEY}` },
    }).then((r) => r.json() as Promise<any>);
    expect(audit.data.map((a: { target_id: string }) => a.target_id)).toEqual(["127.0.0.2"]);
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/tollgate_cp_admin_auth_failures_total\{reason="blocked"\} 1/);
    expect(metrics).toMatch(/tollgate_cp_blocked_clients 1/);
    expect(metrics).not.toContain(TEST_MASTER_KEY);
  });
});
