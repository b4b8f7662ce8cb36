import http from "node:http";
import Database from "better-sqlite3";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, generateApiKey } from "@tollgate/shared";
import { createGateway, type Gateway } from "../index.js";
import { eventually, FakeControlPlane, makeKey, rotateKey, tempDir } from "@tollgate/testkit";
import { testConfig } from "../../test/test-config.js";

describe("brute-force protection on the client API", () => {
  const dir = tempDir();
  const key = makeKey();
  // Rotated an hour ago with a grace period that has ended: its old secret is refused as "rotated".
  const before = makeKey();
  const rotated = rotateKey(before, Date.now() - 3_600_000);
  const cp = new FakeControlPlane([key.upsert, rotated.upsert], 1);
  let gw: Gateway;
  let port: number;
  let statusPort: number;

  /** POST a chat completion from a chosen loopback address (all of 127.0.0.0/8 reaches lo). */
  const chatFrom = (from: string, apiKey: string | undefined) =>
    new Promise<{ status: number; retryAfter: string | undefined; body: any }>((resolve, reject) => {
      const req = http.request(
        {
          host: "127.0.0.1",
          port,
          method: "POST",
          path: "/v1/chat/completions",
          localAddress: from,
          headers: { "content-type": "application/json", ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
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
      req.end(JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }));
    });

  beforeAll(async () => {
    await cp.start();
    gw = createGateway(
      testConfig(dir.path, cp.url, cp.token, { bruteForce: { enabled: true, maxFailedAttempts: 3, ttlMs: 60_000 } }),
      { logger: createLogger({ name: "gateway", level: "silent" }) },
    );
    ({ port, statusPort } = await gw.start());
    await eventually(async () =>
      (await fetch(`http://127.0.0.1:${statusPort}/readyz`)).status === 200 ? true : undefined,
    );
  });

  afterAll(async () => {
    await gw?.stop();
    await cp.stop();
    dir.remove();
  });

  it("blocks an address after repeated invalid keys, with Retry-After, while other addresses and missing keys are unaffected", async () => {
    // Missing keys are not guesses: they never block.
    for (let i = 0; i < 5; i++) expect((await chatFrom("127.0.0.4", undefined)).status).toBe(401);
    expect((await chatFrom("127.0.0.4", key.secret)).status).toBe(200);

    expect((await chatFrom("127.0.0.2", "llmp_garbage")).status).toBe(401);
    expect((await chatFrom("127.0.0.2", generateApiKey().key)).status).toBe(401);
    expect((await chatFrom("127.0.0.2", generateApiKey().key)).status).toBe(401);
    const blocked = await chatFrom("127.0.0.2", key.secret);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.retryAfter)).toBeGreaterThan(50);
    expect(blocked.body.error).toMatchObject({ type: "rate_limit_error", code: "too_many_failed_attempts" });
    expect((await chatFrom("127.0.0.3", key.secret)).status).toBe(200);

    const metrics = await (await fetch(`http://127.0.0.1:${statusPort}/metrics`)).text();
    expect(metrics).toMatch(/tollgate_gateway_auth_failures_total\{reason="blocked"\} 1/);
    expect(metrics).toMatch(/tollgate_gateway_blocked_clients 1/);
    await eventually(() => {
      const db = new Database(join(dir.path, "gateway.db"), { readonly: true });
      try {
        const rows = db.prepare("select detail from audit_log where event = 'client_blocked'").all() as Array<{
          detail: string;
        }>;
        return rows.length === 1 && JSON.parse(rows[0]!.detail).ip === "127.0.0.2" ? true : undefined;
      } finally {
        db.close();
      }
    });
  });

  it("does not count a recently rotated key's old secret as a guess: the address is not locked out", async () => {
    for (let i = 0; i < 6; i++) {
      const res = await chatFrom("127.0.0.9", before.secret);
      expect(res.status).toBe(401);
    }
    expect((await chatFrom("127.0.0.9", rotated.secret)).status).toBe(200);
    expect((await chatFrom("127.0.0.9", key.secret)).status).toBe(200);
  });
});
