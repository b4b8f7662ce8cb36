import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createHmac } from "node:crypto";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CounterKind, KeySyncService, QuotaService, newId } from "@tollgate/shared";
import { startTestControlPlane, type TestControlPlane } from "../../test/test-control-plane.js";
import { TEST_MASTER_KEY } from "../../test/test-config.js";

let test: TestControlPlane;
let quota: Client<typeof QuotaService>;
let sync: Client<typeof KeySyncService>;
let headers: Record<string, string>;
let webhook: Server;
const deliveries: Array<{ body: string; headers: IncomingHttpHeaders }> = [];
let failWebhook = 0;
const SECRET = "whsec-unit-0123456789";

async function admin(method: string, path: string, body?: unknown) {
  const res = await fetch(test.base + path, {
    method,
    headers: { authorization: `Bearer ${TEST_MASTER_KEY}`, "content-type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** Registers a gateway the way real ones do: by subscribing (the first event is enough). */
async function registeredGateway(): Promise<string> {
  const id = newId("gw");
  const abort = new AbortController();
  const it = sync
    .subscribe({ gatewayId: id, gatewayName: id, version: "test", lastRevision: 0n }, { headers, signal: abort.signal })
    [Symbol.asyncIterator]();
  await it.next();
  abort.abort();
  return id;
}

const statement = (
  counter: string,
  capacity: number,
  consumed: number,
  wantHeld: number,
  window = "m:1000",
  kind = CounterKind.WINDOW,
) => ({
  counter,
  window,
  kind,
  capacity: BigInt(capacity),
  consumed: BigInt(consumed),
  wantHeld: BigInt(wantHeld),
  windowEndsAtMs: window.startsWith("m:") ? BigInt(Date.now() + 60_000) : 0n,
});

beforeAll(async () => {
  webhook = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      if (failWebhook > 0) {
        failWebhook--;
        res.writeHead(503).end();
        return;
      }
      deliveries.push({ body, headers: req.headers });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => webhook.listen(0, "127.0.0.1", r));
  test = await startTestControlPlane({
    alerts: { webhookUrl: `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/alerts`, webhookSecret: SECRET },
  });
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${test.grpcPort}` });
  quota = createClient(QuotaService, transport);
  sync = createClient(KeySyncService, transport);
  headers = {
    authorization: `Bearer ${(await admin("POST", "/internal/gateway-tokens", { name: "quota" })).body.token}`,
  };
});

afterAll(async () => {
  await test?.stop();
  await new Promise<void>((r) => webhook?.close(() => r()));
});

describe("QuotaService.Acquire", () => {
  it("never grants more than the capacity, however many gateways ask at once", async () => {
    const gateways = await Promise.all(Array.from({ length: 5 }, () => registeredGateway()));
    const counter = `key:${newId("ak")}:rpm`;
    // Each gateway asks for 30 of a capacity of 100, twice over, all at once.
    const rounds = await Promise.all(
      [...gateways, ...gateways].map((gatewayId) =>
        quota.acquire({ gatewayId, counters: [statement(counter, 100, 0, 30)] }, { headers }),
      ),
    );
    const held = new Map<string, number>();
    rounds.forEach((r, i) => held.set(gateways[i % 5]!, Number(r.grants[0]!.held)));
    const total = [...held.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeLessThanOrEqual(100);
    expect(total).toBeGreaterThanOrEqual(90); // what is left over is less than one request's ask
    const last = rounds.at(-1)!.grants[0]!;
    expect(Number(last.fleetUsed)).toBeLessThanOrEqual(100);
  });

  it("states the control plane's clock, when it took the request and when it answered, so gateways can measure their offset", async () => {
    const gatewayId = await registeredGateway();
    const before = Date.now();
    const res = await quota.acquire(
      { gatewayId, counters: [statement(`key:${newId("ak")}:rpm`, 10, 0, 1)] },
      { headers },
    );
    const after = Date.now();
    const took = Number(res.serverTime!.seconds) * 1000 + Math.floor(res.serverTime!.nanos / 1e6);
    const sent = Number(res.serverTimeMs);
    expect(took).toBeGreaterThanOrEqual(before);
    expect(sent).toBeGreaterThanOrEqual(took);
    expect(sent).toBeLessThanOrEqual(after);
    // The sync stream's first event carries it too, for a gateway that has not called Acquire yet.
    const abort = new AbortController();
    const it = sync
      .subscribe(
        { gatewayId, gatewayName: gatewayId, version: "test", lastRevision: 0n },
        { headers, signal: abort.signal },
      )
      [Symbol.asyncIterator]();
    const first = (await it.next()).value!;
    abort.abort();
    expect(first.event.case).toBe("settings");
    expect(Number(first.event.case === "settings" ? first.event.value.serverTimeMs : 0)).toBeGreaterThanOrEqual(after);
  });

  it("counts what a gateway consumed, gives back what it releases, and expires holdings it stops renewing", async () => {
    const [a, b] = [await registeredGateway(), await registeredGateway()];
    const counter = `team:${newId("team")}:tpd`;
    const d = "d:2026-11-22";
    const first = await quota.acquire({ gatewayId: a, counters: [statement(counter, 1000, 0, 700, d)] }, { headers });
    expect(Number(first.grants[0]!.held)).toBe(700);
    // b can only have what a neither consumed nor holds.
    const second = await quota.acquire({ gatewayId: b, counters: [statement(counter, 1000, 0, 700, d)] }, { headers });
    expect(Number(second.grants[0]!.held)).toBe(300);
    expect(second.activeGateways).toBeGreaterThanOrEqual(2); // both hold units (and connected gateways count too)
    // a used 200 and gives the rest back: b may now hold 800 - its own 0 consumed.
    await quota.acquire({ gatewayId: a, counters: [statement(counter, 1000, 200, 0, d)] }, { headers });
    const third = await quota.acquire({ gatewayId: b, counters: [statement(counter, 1000, 0, 900, d)] }, { headers });
    expect(Number(third.grants[0]!.held)).toBe(800);
    expect(Number(third.grants[0]!.fleetUsed)).toBe(1000);
    // Statements are absolute: the same call again changes nothing.
    const again = await quota.acquire({ gatewayId: b, counters: [statement(counter, 1000, 0, 900, d)] }, { headers });
    expect(Number(again.grants[0]!.held)).toBe(800);
  });

  it("a gauge's units in use come back when their gateway stops renewing them", async () => {
    const short = await startTestControlPlane({ quota: { ...test.cp.context!.config.quota, leaseTtlMs: 300 } });
    try {
      const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${short.grpcPort}` });
      const q = createClient(QuotaService, transport);
      const s = createClient(KeySyncService, transport);
      const tok = await fetch(`${short.base}/internal/gateway-tokens`, {
        method: "POST",
        headers: { authorization: `Bearer ${TEST_MASTER_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "g" }),
      }).then((r) => r.json() as Promise<{ token: string }>);
      const h = { authorization: `Bearer ${tok.token}` };
      const reg = async () => {
        const id = newId("gw");
        const abort = new AbortController();
        await s
          .subscribe({ gatewayId: id, lastRevision: 0n }, { headers: h, signal: abort.signal })
          [Symbol.asyncIterator]()
          .next();
        abort.abort();
        return id;
      };
      const [dead, alive] = [await reg(), await reg()];
      const counter = `key:${newId("ak")}:concurrency`;
      await q.acquire(
        { gatewayId: dead, counters: [statement(counter, 3, 3, 0, "live", CounterKind.GAUGE)] },
        { headers: h },
      );
      const blocked = await q.acquire(
        { gatewayId: alive, counters: [statement(counter, 3, 0, 1, "live", CounterKind.GAUGE)] },
        { headers: h },
      );
      expect(Number(blocked.grants[0]!.held)).toBe(0);
      await new Promise((r) => setTimeout(r, 400));
      const freed = await q.acquire(
        { gatewayId: alive, counters: [statement(counter, 3, 0, 2, "live", CounterKind.GAUGE)] },
        { headers: h },
      );
      expect(Number(freed.grants[0]!.held)).toBe(2);
    } finally {
      await short.stop();
    }
  });

  it("refuses bad statements with InvalidArgument naming the field, and unknown gateways", async () => {
    const gw = await registeredGateway();
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ counter: "nope" }, "counters[0].counter"],
      [{ window: "week:1" }, "counters[0].window"],
      [{ kind: CounterKind.UNSPECIFIED }, "counters[0].kind"],
      [{ capacity: -1n }, "counters[0].capacity"],
    ];
    for (const [patch, field] of cases) {
      const err = await quota
        .acquire(
          { gatewayId: gw, counters: [{ ...statement(`key:${newId("ak")}:rpm`, 10, 0, 1), ...patch }] },
          { headers },
        )
        .catch((e: unknown) => ConnectError.from(e));
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.InvalidArgument);
      expect((err as ConnectError).rawMessage).toContain(field);
    }
    const unknown = await quota
      .acquire({ gatewayId: newId("gw"), counters: [] }, { headers })
      .catch((e: unknown) => ConnectError.from(e));
    expect((unknown as ConnectError).code).toBe(Code.FailedPrecondition);
    const noToken = await quota.acquire({ gatewayId: gw, counters: [] }).catch((e: unknown) => ConnectError.from(e));
    expect((noToken as ConnectError).code).toBe(Code.Unauthenticated);
  });
});

describe("QuotaService.ReportUsage", () => {
  it("applies each report once, however often it is resent, and fires budget alerts once with a signed, retried webhook", async () => {
    const gatewayId = await registeredGateway();
    const user = (await admin("POST", "/internal/users", { external_id: `u-${Date.now()}@example.com` })).body
      .id as string;
    const key = (
      await admin("POST", "/internal/api-keys", {
        name: "reported",
        user_id: user,
        budget_usd: 1,
        budget_alert_thresholds: [50, 80],
      })
    ).body;
    const day = new Date().toISOString().slice(0, 10);
    const record = (requests: number, costMicroUsd: number) => ({
      keyId: key.id,
      userId: user,
      teamId: "",
      day,
      requests: BigInt(requests),
      inputTokens: 10n * BigInt(requests),
      outputTokens: 5n * BigInt(requests),
      costMicroUsd: BigInt(costMicroUsd),
    });
    failWebhook = 1; // the first delivery fails: it must be retried
    const first = await quota.reportUsage(
      {
        gatewayId,
        reports: [
          { seq: 1n, records: [record(3, 300_000)] },
          { seq: 2n, records: [record(2, 300_000)] },
        ],
      },
      { headers },
    );
    expect(first.acknowledged).toEqual([1n, 2n]);
    // A resend (lost acknowledgement) plus one new report.
    const second = await quota.reportUsage(
      {
        gatewayId,
        reports: [
          { seq: 2n, records: [record(2, 300_000)] },
          { seq: 3n, records: [record(1, 10_000)] },
        ],
      },
      { headers },
    );
    expect(second.acknowledged).toEqual([2n, 3n]);
    const shown = (await admin("GET", `/internal/api-keys/${key.id}`)).body;
    expect(shown).toMatchObject({ requests: 6, input_tokens: 60, output_tokens: 30, spend_usd: 0.61 });
    expect(shown.last_used_at).not.toBeNull();

    // 60% spent after the first report: the 50% alert only, once, delivered after one failed attempt.
    const deadline = Date.now() + 15_000;
    while (deliveries.filter((d) => d.body.includes(key.id)).length < 1 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    const mine = deliveries.filter((d) => d.body.includes(key.id));
    expect(mine).toHaveLength(1);
    const alert = JSON.parse(mine[0]!.body);
    expect(alert).toMatchObject({
      type: "budget.threshold_reached",
      key_id: key.id,
      threshold_pct: 50,
      budget_usd: 1,
      spent_usd: 0.6,
    });
    expect(mine[0]!.headers["x-tollgate-signature"]).toBe(
      `sha256=${createHmac("sha256", SECRET).update(mine[0]!.body).digest("hex")}`,
    );
    expect(mine[0]!.headers["x-tollgate-alert-id"]).toBe(alert.alert_id);
    const audit = (await admin("GET", `/internal/audit-logs?target_id=${key.id}&action=api_key.budget_alert`)).body
      .data;
    expect(audit).toHaveLength(1);

    // A malformed report changes nothing.
    const bad = await quota
      .reportUsage(
        { gatewayId, reports: [{ seq: 4n, records: [{ ...record(1, 1), keyId: "not-a-key" }] }] },
        { headers },
      )
      .catch((e: unknown) => ConnectError.from(e));
    expect((bad as ConnectError).code).toBe(Code.InvalidArgument);
    expect((bad as ConnectError).rawMessage).toContain("reports[0].records[0].key_id");
    expect((await admin("GET", `/internal/api-keys/${key.id}`)).body.requests).toBe(6);
  });
});

describe("limits in the admin API and on the key stream", () => {
  it("validates the new key fields field by field, and user and team limits", async () => {
    const user = (await admin("POST", "/internal/users", { external_id: `v-${Date.now()}@example.com` })).body
      .id as string;
    for (const [field, value] of [
      ["budget_period", "weekly"],
      ["tokens_per_day_limit", -1],
      ["max_concurrent_requests", 1.5],
    ] as const) {
      const res = await admin("POST", "/internal/api-keys", { name: "bad", user_id: user, [field]: value });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).toContain(field);
    }
    const ok = await admin("POST", "/internal/api-keys", {
      name: "good",
      user_id: user,
      tokens_per_day_limit: 1000,
      max_concurrent_requests: 2,
      budget_usd: 5,
      budget_period: "monthly",
    });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({
      tokens_per_day_limit: 1000,
      max_concurrent_requests: 2,
      budget_period: "monthly",
      requests: 0,
      spend_usd: 0,
    });
    const badUser = await admin("PATCH", `/internal/users/${user}`, { rpm_limit: "many" });
    expect(badUser.status).toBe(400);
    expect(JSON.stringify(badUser.body)).toContain("rpm_limit");
  });

  it("sends the quota defaults first on every stream, and re-syncs a team's keys with their new limits when the team's limit changes", async () => {
    const withDefaults = await startTestControlPlane({
      quota: {
        ...test.cp.context!.config.quota,
        defaults: {
          keyRpmLimit: 120,
          keyTpmLimit: undefined,
          keyTokensPerDayLimit: undefined,
          teamTpmLimit: 9000,
          teamDailyTokenLimit: undefined,
        },
      },
    });
    try {
      const call = async (method: string, path: string, body?: unknown) =>
        (
          await fetch(withDefaults.base + path, {
            method,
            headers: { authorization: `Bearer ${TEST_MASTER_KEY}`, "content-type": "application/json" },
            ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          })
        ).json() as Promise<any>;
      const h = { authorization: `Bearer ${(await call("POST", "/internal/gateway-tokens", { name: "d" })).token}` };
      const team = (await call("POST", "/internal/teams", { name: "infra" })).id as string;
      const user = (
        await call("POST", "/internal/users", { external_id: "ops@example.com", team_id: team, rpm_limit: 30 })
      ).id as string;
      const key = (await call("POST", "/internal/api-keys", { name: "ops", user_id: user })).id as string;
      const s = createClient(
        KeySyncService,
        createGrpcTransport({ baseUrl: `http://127.0.0.1:${withDefaults.grpcPort}` }),
      );
      const abort = new AbortController();
      const it = s
        .subscribe({ gatewayId: newId("gw"), lastRevision: 0n }, { headers: h, signal: abort.signal })
        [Symbol.asyncIterator]();
      const first = (await it.next()).value!;
      expect(first.event.case).toBe("settings");
      const d = first.event.case === "settings" ? first.event.value.quotaDefaults : undefined;
      expect(d?.keyRpmLimit).toBe(120n);
      expect(d?.teamTpmLimit).toBe(9000n);
      expect(d?.keyTpmLimit).toBeUndefined();
      // Snapshot: the key carries its user's limit.
      let keys: Array<{ id: string; ownerLimits: Array<{ subjectId: string; limit: bigint }> }> = [];
      for (;;) {
        const ev = (await it.next()).value!;
        if (ev.event.case === "snapshotChunk") keys = ev.event.value.keys;
        if (ev.event.case === "snapshotEnd") break;
      }
      expect(keys.find((k) => k.id === key)!.ownerLimits.map((l) => [l.subjectId, l.limit])).toEqual([[user, 30n]]);
      await call("PATCH", `/internal/teams/${team}`, { daily_token_limit: 50_000 });
      let batch;
      do batch = (await it.next()).value!;
      while (batch.event.case !== "changeBatch");
      const change = batch.event.value.changes[0]!;
      expect(change.op.case).toBe("keyUpsert");
      const upsert = change.op.case === "keyUpsert" ? change.op.value : undefined;
      expect(upsert?.id).toBe(key);
      expect(upsert?.ownerLimits.map((l: { subjectId: string; limit: bigint }) => [l.subjectId, l.limit])).toEqual([
        [user, 30n],
        [team, 50_000n],
      ]);
      abort.abort();
    } finally {
      await withDefaults.stop();
    }
  });
});

describe("gateway ids and periods", () => {
  it("another organization's token cannot take over a gateway id while its own token is active", async () => {
    const gw = await registeredGateway();
    const org = (await admin("POST", "/internal/orgs", { name: `other-${Date.now()}` })).body.id as string;
    const res = await fetch(`${test.base}/internal/gateway-tokens`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${TEST_MASTER_KEY}`,
        "content-type": "application/json",
        "tollgate-organization": org,
      },
      body: JSON.stringify({ name: "intruder" }),
    });
    const other = { authorization: `Bearer ${((await res.json()) as { token: string }).token}` };
    const err = await sync
      .subscribe({ gatewayId: gw, lastRevision: 0n }, { headers: other })
      [Symbol.asyncIterator]()
      .next()
      .catch((e: unknown) => ConnectError.from(e));
    expect((err as ConnectError).code).toBe(Code.PermissionDenied);
    expect((err as ConnectError).rawMessage).toContain("another organization");
    // Nor can it report usage under that id.
    const report = await quota
      .reportUsage({ gatewayId: gw, reports: [{ seq: 1n, records: [] }] }, { headers: other })
      .catch((e: unknown) => ConnectError.from(e));
    expect((report as ConnectError).code).toBe(Code.PermissionDenied);
  });

  it("checks a daily budget's thresholds in the day the usage was served, even when it arrives the next day", async () => {
    const gatewayId = await registeredGateway();
    const user = (await admin("POST", "/internal/users", { external_id: `d-${Date.now()}@example.com` })).body
      .id as string;
    const key = (
      await admin("POST", "/internal/api-keys", {
        name: "daily",
        user_id: user,
        budget_usd: 1,
        budget_period: "daily",
        budget_alert_thresholds: [50],
      })
    ).body;
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    await quota.reportUsage(
      {
        gatewayId,
        reports: [
          {
            seq: 900n,
            records: [
              {
                keyId: key.id,
                userId: user,
                teamId: "",
                day: yesterday,
                requests: 1n,
                inputTokens: 1n,
                outputTokens: 1n,
                costMicroUsd: 700_000n,
              },
            ],
          },
        ],
      },
      { headers },
    );
    const audit = (await admin("GET", `/internal/audit-logs?target_id=${key.id}&action=api_key.budget_alert`)).body
      .data;
    expect(audit).toHaveLength(1);
    expect(audit[0].after.period).toBe(`d:${yesterday}`);
  });
});

describe("GET /internal/usage", () => {
  it("sums reported usage per key, user, team or day, and validates its query", async () => {
    const gatewayId = await registeredGateway();
    const teamName = `usage-${Date.now()}`;
    const team = (await admin("POST", "/internal/teams", { name: teamName })).body.id as string;
    const user = (
      await admin("POST", "/internal/users", { external_id: `usage-${Date.now()}@example.com`, team_id: team })
    ).body.id as string;
    const k1 = (await admin("POST", "/internal/api-keys", { name: "u1", user_id: user })).body.id as string;
    const k2 = (await admin("POST", "/internal/api-keys", { name: "u2", user_id: user })).body.id as string;
    const today = new Date().toISOString().slice(0, 10);
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const rec = (keyId: string, day: string, requests: number, cost: number) => ({
      keyId,
      userId: user,
      teamId: team,
      day,
      requests: BigInt(requests),
      inputTokens: BigInt(requests * 10),
      outputTokens: BigInt(requests * 2),
      costMicroUsd: BigInt(cost),
    });
    await quota.reportUsage(
      {
        gatewayId,
        reports: [
          {
            seq: 5000n,
            records: [rec(k1, yesterday, 2, 200_000), rec(k1, today, 3, 300_000), rec(k2, today, 1, 50_000)],
          },
        ],
      },
      { headers },
    );
    const byKey = (await admin("GET", `/internal/usage?team_id=${team}&from=${yesterday}`)).body;
    expect(byKey.group_by).toBe("key");
    expect(byKey.data).toEqual([
      { key_id: k1, name: "u1", requests: 5, input_tokens: 50, output_tokens: 10, cost_usd: 0.5 },
      { key_id: k2, name: "u2", requests: 1, input_tokens: 10, output_tokens: 2, cost_usd: 0.05 },
    ]);
    // A deleted key's usage stays, without a name to show.
    expect((await admin("DELETE", `/internal/api-keys/${k2}`)).status).toBe(200);
    const afterDelete = (await admin("GET", `/internal/usage?team_id=${team}&from=${yesterday}`)).body.data;
    expect(afterDelete.map((r: { key_id: string; name: string | null }) => [r.key_id, r.name])).toEqual([
      [k1, "u1"],
      [k2, null],
    ]);
    const byTeam = (await admin("GET", `/internal/usage?group_by=team&team_id=${team}&from=${yesterday}&to=${today}`))
      .body.data;
    expect(byTeam).toEqual([
      { team_id: team, name: teamName, requests: 6, input_tokens: 60, output_tokens: 12, cost_usd: 0.55 },
    ]);
    const byDay = (await admin("GET", `/internal/usage?group_by=day&user_id=${user}&from=${yesterday}`)).body.data;
    expect(byDay.map((d: { day: string; requests: number }) => [d.day, d.requests])).toEqual([
      [yesterday, 2],
      [today, 4],
    ]);
    for (const [q, field] of [
      ["group_by=week", "group_by"],
      ["from=yesterday", "from"],
      [`from=${today}&to=${yesterday}`, "from"],
      ["key_id=nope", "key_id"],
    ] as const) {
      const res = await admin("GET", `/internal/usage?${q}`);
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).toContain(field);
    }
  });
});
