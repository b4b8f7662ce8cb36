import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabase } from "@tollgate/testkit";
import { startFakeOpenAI, type FakeOpenAI } from "@tollgate/testkit";
import {
  createTempDir,
  getFreePort,
  startControlPlane,
  startGateway,
  waitFor,
  type ControlPlaneProcess,
  type GatewayProcess,
  type TempDir,
} from "@tollgate/testkit";

/**
 * Fleet-wide quotas across real processes: one control plane, three gateways,
 * a fake upstream that reports usage, and a webhook receiver for budget alerts.
 */
const MASTER_KEY = "sk-quotas-master-key-0123456789abcdefghij";
const UPSTREAM_KEY = "sk-upstream-quotas-0123456789";
const WAIT = "?wait_for_gateways=10s";

interface Alert {
  type: string;
  key_id: string;
  threshold_pct: number;
  spent_usd: number;
  budget_usd: number;
}

async function startWebhook(): Promise<{
  url: string;
  alerts: Alert[];
  headers: Record<string, string | string[] | undefined>[];
  close(): Promise<void>;
}> {
  const alerts: Alert[] = [];
  const headers: Record<string, string | string[] | undefined>[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      alerts.push(JSON.parse(body) as Alert);
      headers.push(req.headers);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/budget`,
    alerts,
    headers,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** Waits until the current UTC minute has at least `seconds` left, so a burst stays in one rate window. */
async function awayFromMinuteBoundary(seconds = 20): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < seconds * 1000) await new Promise((r) => setTimeout(r, left + 200));
}

describe("quotas and budgets that hold across the fleet", () => {
  const db = testDatabase("quotas");
  let tmp: TempDir;
  let upstream: FakeOpenAI;
  let webhook: Awaited<ReturnType<typeof startWebhook>>;
  let cp: ControlPlaneProcess;
  let grpcPort: number;
  let token: string;
  const fleet: GatewayProcess[] = [];

  const cpOptions = () => ({
    masterKey: MASTER_KEY,
    dataDir: join(tmp.path, "cp"),
    grpcPort,
    env: { ALERT_WEBHOOK_URL: webhook.url, ALERT_WEBHOOK_SECRET: "whsec-test-0123456789" },
    ...(db ? { databaseUrl: db.url, databaseSchema: db.schema } : {}),
  });
  const gateway = (name: string) =>
    startGateway({
      controlPlaneUrl: cp.grpcUrl,
      token,
      name,
      dataDir: join(tmp.path, name),
      openaiBaseUrl: upstream.baseUrl,
      openaiApiKey: UPSTREAM_KEY,
    });

  const chat = async (
    gw: GatewayProcess,
    key: string,
    content = "hello there",
    extra: Record<string, unknown> = {},
  ) => {
    const res = await fetch(`${gw.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }], ...extra }),
    });
    return { status: res.status, headers: res.headers, body: (await res.json().catch(() => null)) as any };
  };

  const newUser = async (externalId: string, teamId?: string) =>
    (await cp.admin.post("/internal/users", { external_id: externalId, ...(teamId ? { team_id: teamId } : {}) })).body
      .id as string;
  const newKey = async (userId: string, fields: Record<string, unknown>) => {
    const res = await cp.admin.post(`/internal/api-keys${WAIT}`, {
      name: `k-${Math.random()}`,
      user_id: userId,
      ...fields,
    });
    expect(res.status).toBe(201);
    return res.body as { id: string; key: string };
  };

  beforeAll(async () => {
    tmp = await createTempDir("quotas-");
    upstream = await startFakeOpenAI({ expectedApiKey: UPSTREAM_KEY });
    webhook = await startWebhook();
    grpcPort = await getFreePort();
    cp = await startControlPlane(cpOptions());
    token = (await cp.admin.post("/internal/gateway-tokens", { name: "fleet" })).body.token;
    fleet.push(await gateway("gw-1"), await gateway("gw-2"), await gateway("gw-3"));
    await Promise.all(fleet.map((g) => g.waitForReady(30_000)));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(fleet.map((g) => g?.stop()));
    await cp?.stop();
    await upstream?.close();
    await webhook?.close();
    await db?.drop();
    await tmp?.cleanup();
  });

  it("a key with 60 requests/min, hit concurrently through three gateways, is served 60 times in the minute", async () => {
    const user = await newUser("burst@example.com");
    const key = await newKey(user, { rpm_limit: 60 });
    await awayFromMinuteBoundary();
    // 90 requests at once, 30 through each gateway.
    const results = await Promise.all(Array.from({ length: 90 }, (_, i) => chat(fleet[i % 3]!, key.key, `burst ${i}`)));
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 429);
    expect(ok.length + refused.length).toBe(90);
    console.log(`quota: 60 rpm key, 90 concurrent requests over 3 gateways: ${ok.length} accepted`);
    // The stated bound (README): never more than the limit; at most one unit per gateway left unused in its lease.
    expect(ok.length).toBeLessThanOrEqual(60);
    expect(ok.length).toBeGreaterThanOrEqual(60 - fleet.length);
    for (const r of refused) {
      expect(r.body.error.type).toBe("requests");
      expect(r.body.error.code).toBe("rate_limit_exceeded");
      expect(r.body.error.message).toContain("requests per minute");
      expect(r.body.error.message).toContain("limit 60");
      const retry = Number(r.headers.get("retry-after"));
      expect(retry).toBeGreaterThanOrEqual(1);
      expect(retry).toBeLessThanOrEqual(60);
    }
    for (const r of ok) {
      expect(r.headers.get("x-ratelimit-limit-requests")).toBe("60");
      const remaining = Number(r.headers.get("x-ratelimit-remaining-requests"));
      expect(remaining).toBeGreaterThanOrEqual(0);
      expect(remaining).toBeLessThan(60);
      expect(r.headers.get("x-ratelimit-reset-requests")).toMatch(/^\d+(ms|s)$|^\d+m\d+s$/);
    }
    // The official client sees a RateLimitError carrying the headers (once the at most one unit per gateway left unused is gone).
    const client = new OpenAI({ apiKey: key.key, baseURL: fleet[0]!.baseUrl, maxRetries: 0 });
    let extra = 0;
    let err: unknown;
    for (let i = 0; i <= fleet.length && !err; i++) {
      await client.chat.completions
        .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "one more" }] })
        .then(
          () => extra++,
          (e: unknown) => (err = e),
        );
    }
    expect(ok.length + extra).toBeLessThanOrEqual(60);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).headers?.get("x-ratelimit-limit-requests")).toBe("60");
    expect(
      Number((err as InstanceType<typeof OpenAI.RateLimitError>).headers?.get("x-ratelimit-remaining-requests")),
    ).toBe(0);
    const metrics = await fleet[0]!.metrics();
    expect(metrics).toMatch(/tollgate_gateway_quota_refusals_total\{scope="key",limit="rpm"\} [1-9]/);
  });

  it("a team's daily token limit holds across two users' keys on different gateways", async () => {
    const LIMIT = 600;
    const team = (await cp.admin.post("/internal/teams", { name: "research", daily_token_limit: LIMIT })).body
      .id as string;
    const alice = await newKey(await newUser("alice@research.test", team), {});
    const bob = await newKey(await newUser("bob@research.test", team), {});
    let served = 0;
    let largest = 0;
    const refusedOn = new Set<string>();
    // Alternate: alice through gw-1, bob through gw-2, until both are refused.
    for (let i = 0; i < 200 && refusedOn.size < 2; i++) {
      const who =
        i % 2 === 0 ? { key: alice.key, gw: fleet[0]!, name: "alice" } : { key: bob.key, gw: fleet[1]!, name: "bob" };
      if (refusedOn.has(who.name)) continue;
      const r = await chat(who.gw, who.key, "count these words please", { max_tokens: 16 });
      if (r.status === 200) {
        served += r.body.usage.total_tokens as number;
        largest = Math.max(largest, r.body.usage.total_tokens as number);
      } else {
        expect(r.status).toBe(429);
        expect(r.body.error.message).toContain(`team ${team}`);
        expect(r.body.error.message).toContain("tokens per day");
        refusedOn.add(who.name);
      }
    }
    expect(refusedOn.size).toBe(2);
    console.log(
      `quota: team ${LIMIT} tokens/day over 2 gateways: ${served} tokens served (largest request ${largest})`,
    );
    // Reservations hold prompt estimate + max_tokens; settlement takes the real count: at most one request over per gateway.
    expect(served).toBeLessThanOrEqual(LIMIT + 2 * largest);
    expect(served).toBeGreaterThanOrEqual(LIMIT - 2 * 40);
    // The third gateway refuses the team too, without having served it.
    expect((await chat(fleet[2]!, alice.key, "hi", { max_tokens: 16 })).status).toBe(429);
  });

  it("a budget with a price table stops every gateway within one request per gateway, and alerts fire once each", async () => {
    // $1,000 per million tokens both ways: one token costs $0.001.
    const price = await cp.admin.put("/internal/model-prices/openai/gpt-4o-mini", {
      input_usd_per_mtok: 1000,
      output_usd_per_mtok: 1000,
    });
    expect([200, 201]).toContain(price.status);
    const BUDGET = 0.5;
    const key = await newKey(await newUser("spender@example.com"), {
      budget_usd: BUDGET,
      budget_alert_thresholds: [50, 90],
    });
    let spent = 0;
    let largest = 0;
    let refusals = 0;
    for (let round = 0; round < 100 && refusals < 3; round++) {
      refusals = 0;
      const results = await Promise.all(
        fleet.map((gw) => chat(gw, key.key, "spend a little money", { max_tokens: 12 })),
      );
      for (const r of results) {
        if (r.status === 200) {
          const cost = (r.body.usage.total_tokens as number) * 0.001;
          spent += cost;
          largest = Math.max(largest, cost);
        } else {
          expect(r.status).toBe(429);
          expect(r.body.error.type).toBe("insufficient_quota");
          expect(r.body.error.code).toBe("insufficient_quota");
          refusals++;
        }
      }
    }
    expect(refusals).toBe(3);
    console.log(
      `quota: $${BUDGET} budget over 3 gateways: $${spent.toFixed(3)} spent (largest request $${largest.toFixed(3)})`,
    );
    expect(spent).toBeLessThanOrEqual(BUDGET + fleet.length * largest + 1e-9);
    expect(spent).toBeGreaterThan(BUDGET * 0.8);

    // Usage reaches the control plane; both thresholds fire once, by webhook and in the audit log.
    await waitFor(() => webhook.alerts.filter((a) => a.key_id === key.id).length >= 2, {
      timeoutMs: 15_000,
      message: "two budget alerts",
    });
    await new Promise((r) => setTimeout(r, 2500)); // more reports arrive: no alert repeats
    const mine = webhook.alerts.filter((a) => a.key_id === key.id);
    expect(mine.map((a) => a.threshold_pct).sort((a, b) => a - b)).toEqual([50, 90]);
    expect(mine.every((a) => a.type === "budget.threshold_reached" && a.budget_usd === BUDGET)).toBe(true);
    const i = webhook.alerts.indexOf(mine[0]!);
    expect(String(webhook.headers[i]!["x-tollgate-signature"])).toMatch(/^sha256=[0-9a-f]{64}$/);
    const audit = await cp.admin.get(`/internal/audit-logs?target_id=${key.id}&action=api_key.budget_alert`);
    expect(audit.status).toBe(200);
    expect(audit.body.data.length).toBe(2);
    const listed = await cp.admin.get(`/internal/api-keys/${key.id}`);
    expect(listed.body.spend_usd).toBeGreaterThan(BUDGET * 0.8);
  });

  it("usage a gateway could not report before a kill -9 arrives exactly once after it restarts", async () => {
    const key = await newKey(await newUser("crash@example.com"), {});
    await cp.stop(); // the gateways keep serving their cached keys; reports wait in the outbox
    const victim = fleet[2]!;
    const N = 7;
    for (let i = 0; i < N; i++)
      expect((await chat(victim, key.key, `while the control plane is down ${i}`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 400)); // past the log batch interval: in SQLite, not in memory
    // Operators see the backlog waiting for the control plane.
    const ready = (await victim.readyz()).body;
    expect(ready.quota.usage_outbox).toBeGreaterThanOrEqual(1);
    expect(await victim.metrics()).toMatch(/tollgate_gateway_usage_outbox_rows [1-9]/);
    await victim.kill9();
    cp = await startControlPlane(cpOptions());
    fleet[2] = await gateway("gw-3");
    await fleet[2].waitForReady(30_000);
    await waitFor(async () => (await cp.admin.get(`/internal/api-keys/${key.id}`)).body.requests === N, {
      timeoutMs: 20_000,
      message: `the key's ${N} requests to be reported`,
    });
    await new Promise((r) => setTimeout(r, 3000)); // several more report rounds: nothing counted twice
    const shown = (await cp.admin.get(`/internal/api-keys/${key.id}`)).body;
    expect(shown.requests).toBe(N);
    expect(shown.last_used_at).not.toBeNull();
    const list = await cp.admin.get(`/internal/api-keys?search=${encodeURIComponent("k-")}&limit=200`);
    const row = list.body.data.find((k: { id: string }) => k.id === key.id);
    expect(row.usage_pct).toBeGreaterThan(0);
    expect(row.usage_pct).toBeLessThan(100);
  }, 90_000);
});
