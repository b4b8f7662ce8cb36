import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSession } from "../auth/sessions.js";
import { startTestControlPlane, type TestControlPlane } from "../../test/test-control-plane.js";
import { TEST_MASTER_KEY } from "../../test/test-config.js";

/**
 * Admin tokens and roles, route by route: an admin token of organization A gets
 * nothing of organization B (403 when it names B, 404 for B's ids), a read_only
 * token only reads, a member reaches only their own keys, and nothing is written
 * by any refused call. Every audit row names its actor.
 */
let test: TestControlPlane;

interface Res {
  status: number;
  body: any;
}

interface Auth {
  bearer?: string;
  session?: { cookie: string; csrf: string };
  org?: string;
}

async function call(method: string, path: string, auth: Auth, body?: unknown): Promise<Res> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (auth.bearer) headers.authorization = `Bearer ${auth.bearer}`;
  if (auth.session) {
    headers.cookie = `tollgate_session=${auth.session.cookie}`;
    headers["x-csrf-token"] = auth.session.csrf;
  }
  if (auth.org) headers["tollgate-organization"] = auth.org;
  const res = await fetch(test.base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const master = (org?: string): Auth => ({ bearer: TEST_MASTER_KEY, ...(org ? { org } : {}) });

async function ok(res: Promise<Res>, status = 201): Promise<any> {
  const r = await res;
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  return r.body;
}

let orgA: string;
let orgB: string;
const a: Record<string, string> = {};
const b: Record<string, string> = {};
let adminToken: string;
let readOnlyToken: string;
let memberSession: { cookie: string; csrf: string };

/** Everything an organization holds, as the master key sees it: unchanged means nothing was written. */
async function snapshot(org: string): Promise<string> {
  const parts: unknown[] = [];
  for (const path of [
    "/internal/teams?limit=1000",
    "/internal/users?limit=1000",
    "/internal/api-keys?limit=1000",
    "/internal/gateway-tokens",
    "/internal/admin-tokens",
    "/internal/model-prices?limit=1000",
  ]) {
    const r = await call("GET", path, master(org));
    expect(r.status, path).toBe(200);
    parts.push(r.body);
  }
  const audit = await call("GET", "/internal/audit-logs?limit=1000", master(org));
  // Refusals are not audited as changes; only the count of change rows matters.
  parts.push(
    (audit.body.data as Array<{ action: string }>).filter(
      (r) => !r.action.startsWith("auth.") && !r.action.startsWith("session."),
    ).length,
  );
  return JSON.stringify(parts);
}

beforeAll(async () => {
  test = await startTestControlPlane();
  orgA = test.cp.context!.defaultOrgId;
  orgB = (await ok(call("POST", "/internal/orgs", master(), { name: "beta" }))).id;
  for (const [org, ids] of [
    [orgA, a],
    [orgB, b],
  ] as const) {
    ids.team = (
      await ok(
        call("POST", "/internal/teams", master(org), { name: "eng", tpm_limit: 1000, daily_token_limit: 100_000 }),
      )
    ).id;
    ids.user = (
      await ok(call("POST", "/internal/users", master(org), { external_id: `alice@${org}.test`, team_id: ids.team }))
    ).id;
    ids.other = (
      await ok(call("POST", "/internal/users", master(org), { external_id: `bob@${org}.test`, team_id: ids.team }))
    ).id;
    ids.key = (await ok(call("POST", "/internal/api-keys", master(org), { name: "alice-1", user_id: ids.user }))).id;
    ids.otherKey = (
      await ok(call("POST", "/internal/api-keys", master(org), { name: "bob-1", user_id: ids.other }))
    ).id;
    ids.gatewayToken = (await ok(call("POST", "/internal/gateway-tokens", master(org), { name: "gw" }))).id;
    ids.adminToken = (await ok(call("POST", "/internal/admin-tokens", master(org), { name: "ci", role: "admin" }))).id;
  }
  const minted = await ok(
    call("POST", "/internal/admin-tokens", master(orgA), { name: "automation", role: "admin", expires_at: "30d" }),
  );
  adminToken = minted.token;
  readOnlyToken = (
    await ok(call("POST", "/internal/admin-tokens", master(orgA), { name: "reader", role: "read_only" }))
  ).token;
  const opened = await openSession(
    test.cp.context!.db,
    { kind: "user", id: a.user!, role: "member", org_id: orgA },
    test.cp.context!.config.sessions,
    new Date(),
  );
  memberSession = { cookie: opened.token, csrf: opened.csrfToken };
}, 60_000);

afterAll(async () => {
  await test?.stop();
});

describe("admin tokens", () => {
  it("are shown once, stored hashed and listed by prefix only", async () => {
    const created = await ok(call("POST", "/internal/admin-tokens", master(orgA), { name: "once", role: "read_only" }));
    expect(created.token).toMatch(/^tga_[0-9A-Za-z]{40}$/);
    expect(created.token.startsWith(created.token_prefix)).toBe(true);
    const list = await ok(call("GET", "/internal/admin-tokens", master(orgA)), 200);
    const listed = list.data.find((t: { id: string }) => t.id === created.id);
    expect(listed).toMatchObject({
      name: "once",
      role: "read_only",
      token_prefix: created.token_prefix,
      revoked_at: null,
      created_by: "master_key",
    });
    expect(JSON.stringify(list)).not.toContain(created.token);
    expect(await ok(call("GET", "/internal/teams", { bearer: created.token }), 200)).toHaveProperty("data");
  });

  it("stop working when revoked, and expire", async () => {
    const created = await ok(call("POST", "/internal/admin-tokens", master(orgA), { name: "short", role: "admin" }));
    expect((await call("GET", "/internal/teams", { bearer: created.token })).status).toBe(200);
    const revoked = await ok(call("DELETE", `/internal/admin-tokens/${created.id}`, master(orgA)), 200);
    expect(revoked.revoked_at).not.toBeNull();
    expect((await call("GET", "/internal/teams", { bearer: created.token })).status).toBe(401);
    expect((await call("DELETE", `/internal/admin-tokens/${created.id}`, master(orgA))).status).toBe(404);
    const past = await call("POST", "/internal/admin-tokens", master(orgA), {
      name: "past",
      expires_at: "2020-01-01T00:00:00Z",
    });
    expect(past.status).toBe(400);
  });

  it("end the dashboard sessions opened with them when revoked, and stop at their expiry", async () => {
    const created = await ok(
      call("POST", "/internal/admin-tokens", master(orgA), { name: "expiring", role: "admin", expires_at: "30d" }),
    );
    const res = await fetch(`${test.base}/internal/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ credential: created.token }),
    });
    expect(res.status).toBe(201);
    const cookie = /tollgate_session=([^;]*)/.exec(res.headers.get("set-cookie")!)![1]!;
    const session = { cookie, csrf: ((await res.json()) as { csrf_token: string }).csrf_token };
    expect((await call("GET", "/internal/teams", { session })).status).toBe(200);
    // Its expiry passes (moved into the past rather than waited for).
    await test.cp
      .context!.db.withTables<{ admin_tokens: { id: string; expires_at: Date | null } }>()
      .updateTable("admin_tokens")
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where("id", "=", created.id)
      .execute();
    expect((await call("GET", "/internal/teams", { bearer: created.token })).status).toBe(401);
    expect((await call("GET", "/internal/teams", { session })).status).toBe(401);

    const other = await ok(call("POST", "/internal/admin-tokens", master(orgA), { name: "revoked", role: "admin" }));
    const opened = await fetch(`${test.base}/internal/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ credential: other.token }),
    });
    const otherCookie = /tollgate_session=([^;]*)/.exec(opened.headers.get("set-cookie")!)![1]!;
    const otherSession = { cookie: otherCookie, csrf: ((await opened.json()) as { csrf_token: string }).csrf_token };
    expect((await call("GET", "/internal/teams", { session: otherSession })).status).toBe(200);
    expect(
      (await ok(call("DELETE", `/internal/admin-tokens/${other.id}`, master(orgA)), 200)).revoked_at,
    ).not.toBeNull();
    expect((await call("GET", "/internal/teams", { session: otherSession })).status).toBe(401);
  });

  it("reject a malformed or unknown token as 401", async () => {
    expect((await call("GET", "/internal/teams", { bearer: "tga_short" })).status).toBe(401);
    expect((await call("GET", "/internal/teams", { bearer: `tga_${"x".repeat(40)}` })).status).toBe(401);
  });

  it("open a dashboard session confined like the token", async () => {
    const res = await fetch(`${test.base}/internal/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ credential: readOnlyToken }),
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as any;
    expect(body.session.actor).toMatchObject({ kind: "admin_token", role: "read_only", org_id: orgA });
    const cookie = /tollgate_session=([^;]*)/.exec(res.headers.get("set-cookie")!)![1]!;
    const session = { cookie, csrf: body.csrf_token };
    expect((await call("GET", "/internal/teams", { session })).status).toBe(200);
    expect((await call("POST", "/internal/teams", { session }, { name: "nope" })).status).toBe(403);
    expect((await call("GET", "/internal/teams", { session, org: orgB })).status).toBe(403);
  });

  it("name their actor in every audit row", async () => {
    const team = await ok(call("POST", "/internal/teams", { bearer: adminToken }, { name: "by-token" }));
    const rows = (await ok(call("GET", `/internal/audit-logs?target_id=${team.id}`, master(orgA)), 200)).data;
    expect(rows[0].actor).toMatch(/^admin_token:adt_[0-9a-z]{26}$/);
    const key = await ok(
      call("POST", "/internal/api-keys", { session: memberSession }, { name: "mine", user_id: a.user }),
    );
    const keyRows = (await ok(call("GET", `/internal/audit-logs?target_id=${key.id}`, master(orgA)), 200)).data;
    expect(keyRows[0].actor).toBe(`user:${a.user}`);
    const byMaster = await ok(call("POST", "/internal/teams", master(orgA), { name: "by-master" }));
    expect(
      (await ok(call("GET", `/internal/audit-logs?target_id=${byMaster.id}`, master(orgA)), 200)).data[0].actor,
    ).toBe("master_key");
  });
});

/** Every route, with organization B's ids. */
function routesOnB(): Array<[string, string, unknown?]> {
  return [
    ["GET", "/internal/teams"],
    ["POST", "/internal/teams", { name: "intruder" }],
    ["GET", `/internal/teams/${b.team}`],
    ["PATCH", `/internal/teams/${b.team}`, { name: "renamed" }],
    ["DELETE", `/internal/teams/${b.team}`],
    ["GET", "/internal/users"],
    ["POST", "/internal/users", { external_id: "eve@b.test", team_id: b.team }],
    ["GET", `/internal/users/${b.user}`],
    ["PATCH", `/internal/users/${b.user}`, { role: "admin" }],
    ["DELETE", `/internal/users/${b.user}?cascade=true`],
    ["GET", "/internal/api-keys"],
    ["POST", "/internal/api-keys", { name: "stolen", user_id: b.user }],
    ["POST", "/internal/api-keys/bulk", { keys: [{ name: "stolen", user_id: b.user }] }],
    ["GET", `/internal/api-keys/${b.key}`],
    ["PATCH", `/internal/api-keys/${b.key}`, { name: "renamed" }],
    ["POST", `/internal/api-keys/${b.key}/rotate`, {}],
    ["POST", `/internal/api-keys/${b.key}/deactivate`, {}],
    ["POST", `/internal/api-keys/${b.key}/activate`, {}],
    ["POST", `/internal/api-keys/${b.key}/revoke`, {}],
    ["POST", `/internal/api-keys/${b.key}/ephemeral-tokens`, {}],
    ["DELETE", `/internal/api-keys/${b.key}`],
    ["GET", "/internal/gateway-tokens"],
    ["POST", "/internal/gateway-tokens", { name: "intruder" }],
    ["DELETE", `/internal/gateway-tokens/${b.gatewayToken}`],
    ["GET", "/internal/gateways"],
    ["GET", "/internal/admin-tokens"],
    ["POST", "/internal/admin-tokens", { name: "intruder", role: "admin" }],
    ["GET", `/internal/admin-tokens/${b.adminToken}`],
    ["DELETE", `/internal/admin-tokens/${b.adminToken}`],
    ["GET", "/internal/model-prices"],
    ["PUT", "/internal/model-prices/openai/gpt-4o-mini", { input_usd_per_mtok: 0, output_usd_per_mtok: 0 }],
    ["DELETE", "/internal/model-prices/openai/gpt-4o-mini"],
    ["GET", "/internal/usage"],
    ["GET", "/internal/audit-logs"],
    ["GET", `/internal/orgs/${orgB}`],
  ];
}

describe("an admin token of organization A on organization B", () => {
  it("is refused (403) on every route when it names B in the header, and writes nothing", async () => {
    const before = await snapshot(orgB);
    for (const [method, path, body] of routesOnB()) {
      const res = await call(method, path, { bearer: adminToken, org: orgB }, body);
      expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBe(403);
    }
    expect(await snapshot(orgB)).toBe(before);
  });

  it("finds none of B's resources (404) on every route that names one, and writes nothing", async () => {
    const before = await snapshot(orgB);
    const idsOfB = [b.team, b.user, b.key, b.gatewayToken, b.adminToken, orgB] as string[];
    const naming = routesOnB().filter(([, path, body]) =>
      idsOfB.some((id) => path.includes(id) || JSON.stringify(body ?? {}).includes(id)),
    );
    expect(naming.length).toBeGreaterThan(20);
    for (const [method, path, body] of naming) {
      const res = await call(method, path, { bearer: adminToken }, body);
      expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBe(404);
    }
    expect(await snapshot(orgB)).toBe(before);
  });

  it("lists only its own organization", async () => {
    const orgs = await ok(call("GET", "/internal/orgs", { bearer: adminToken }), 200);
    expect(orgs.data.map((o: { id: string }) => o.id)).toEqual([orgA]);
    expect((await call("POST", "/internal/orgs", { bearer: adminToken }, { name: "gamma" })).status).toBe(403);
  });
});

describe("a read_only admin token", () => {
  it("reads, and is refused (403) on every write, writing nothing", async () => {
    expect((await call("GET", "/internal/api-keys", { bearer: readOnlyToken })).status).toBe(200);
    const before = await snapshot(orgA);
    for (const [method, rawPath, body] of routesOnB()) {
      if (method === "GET") continue;
      const path = rawPath
        .replaceAll(b.team!, a.team!)
        .replaceAll(b.user!, a.user!)
        .replaceAll(b.key!, a.key!)
        .replaceAll(b.gatewayToken!, a.gatewayToken!)
        .replaceAll(b.adminToken!, a.adminToken!);
      const res = await call(
        method,
        path,
        { bearer: readOnlyToken },
        body && JSON.parse(JSON.stringify(body).replaceAll(b.user!, a.user!).replaceAll(b.team!, a.team!)),
      );
      expect(res.status, `${method} ${path}`).toBe(403);
    }
    expect(await snapshot(orgA)).toBe(before);
  });
});

describe("a member", () => {
  const member = () => ({ session: memberSession });

  it("lists only their own keys", async () => {
    const list = await ok(call("GET", "/internal/api-keys", member()), 200);
    expect(list.data.length).toBeGreaterThan(0);
    for (const k of list.data) expect(k.user_id).toBe(a.user);
    expect((await call("GET", `/internal/api-keys?user_id=${a.other}`, member())).status).toBe(403);
  });

  it("creates, rotates, mints ephemeral tokens for, deactivates and deletes their own key", async () => {
    const key = await ok(
      call("POST", "/internal/api-keys", member(), { name: "laptop", user_id: a.user, tpm_limit: 500 }),
    );
    expect((await call("GET", `/internal/api-keys/${key.id}`, member())).status).toBe(200);
    expect((await ok(call("POST", `/internal/api-keys/${key.id}/rotate`, member(), {}), 200)).key).toMatch(/^llmp_/);
    expect((await ok(call("POST", `/internal/api-keys/${key.id}/ephemeral-tokens`, member(), {}))).token).toBeDefined();
    expect((await ok(call("POST", `/internal/api-keys/${key.id}/deactivate`, member(), {}), 200)).status).toBe(
      "inactive",
    );
    expect((await call("DELETE", `/internal/api-keys/${key.id}`, member())).status).toBe(200);
  });

  it("creates keys only for themselves and within their team's limits", async () => {
    const before = await snapshot(orgA);
    expect((await call("POST", "/internal/api-keys", member(), { name: "for-bob", user_id: a.other })).status).toBe(
      403,
    );
    expect(
      (await call("POST", "/internal/api-keys", member(), { name: "greedy", user_id: a.user, tpm_limit: 5000 })).status,
    ).toBe(403);
    expect(
      (
        await call("POST", "/internal/api-keys", member(), {
          name: "greedy",
          user_id: a.user,
          tokens_per_day_limit: 10_000_000,
        })
      ).status,
    ).toBe(403);
    expect(
      (await call("POST", "/internal/api-keys/bulk", member(), { keys: [{ name: "x", user_id: a.user }] })).status,
    ).toBe(403);
    expect(await snapshot(orgA)).toBe(before);
  });

  it("reaches no other user's key, team, user, gateway or price (403 or 404), writing nothing", async () => {
    const before = await snapshot(orgA);
    const routes: Array<[string, string, unknown?]> = [
      ["GET", `/internal/api-keys/${a.otherKey}`],
      ["PATCH", `/internal/api-keys/${a.otherKey}`, { name: "mine now" }],
      ["PATCH", `/internal/api-keys/${a.key}`, { tpm_limit: 1_000_000 }],
      ["POST", `/internal/api-keys/${a.otherKey}/rotate`, {}],
      ["POST", `/internal/api-keys/${a.otherKey}/deactivate`, {}],
      ["POST", `/internal/api-keys/${a.otherKey}/activate`, {}],
      ["POST", `/internal/api-keys/${a.otherKey}/revoke`, {}],
      ["POST", `/internal/api-keys/${a.otherKey}/ephemeral-tokens`, {}],
      ["DELETE", `/internal/api-keys/${a.otherKey}`],
      ["GET", "/internal/teams"],
      ["POST", "/internal/teams", { name: "mine" }],
      ["GET", `/internal/teams/${a.team}`],
      ["PATCH", `/internal/teams/${a.team}`, { tpm_limit: 10_000_000 }],
      ["DELETE", `/internal/teams/${a.team}`],
      ["POST", "/internal/users", { external_id: "eve@a.test" }],
      ["GET", `/internal/users/${a.other}`],
      ["PATCH", `/internal/users/${a.user}`, { role: "admin" }],
      ["DELETE", `/internal/users/${a.other}?cascade=true`],
      ["GET", "/internal/gateway-tokens"],
      ["POST", "/internal/gateway-tokens", { name: "mine" }],
      ["DELETE", `/internal/gateway-tokens/${a.gatewayToken}`],
      ["GET", "/internal/gateways"],
      ["GET", "/internal/admin-tokens"],
      ["POST", "/internal/admin-tokens", { name: "mine", role: "admin" }],
      ["DELETE", `/internal/admin-tokens/${a.adminToken}`],
      ["GET", "/internal/model-prices"],
      ["PUT", "/internal/model-prices/openai/gpt-4o-mini", { input_usd_per_mtok: 0, output_usd_per_mtok: 0 }],
      ["GET", "/internal/usage"],
      ["GET", "/internal/audit-logs"],
      ["GET", "/internal/orgs"],
      ["POST", "/internal/orgs", { name: "mine" }],
    ];
    for (const [method, path, body] of routes) {
      const res = await call(method, path, member(), body);
      expect([403, 404], `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`).toContain(res.status);
    }
    expect(await snapshot(orgA)).toBe(before);
    expect((await call("GET", `/internal/users/${a.user}`, member())).status).toBe(200);
    // The user list a key form needs holds the member alone.
    expect((await ok(call("GET", "/internal/users", member()), 200)).data.map((u: { id: string }) => u.id)).toEqual([
      a.user,
    ]);
  });

  it("loses admin rights at once when demoted through the admin API", async () => {
    const boss = await ok(call("POST", "/internal/users", master(orgA), { external_id: "boss@a.test", role: "admin" }));
    expect(boss.role).toBe("admin");
    const opened = await openSession(
      test.cp.context!.db,
      { kind: "user", id: boss.id, role: "admin", org_id: orgA },
      test.cp.context!.config.sessions,
      new Date(),
    );
    const session = { cookie: opened.token, csrf: opened.csrfToken };
    expect((await call("GET", "/internal/teams", { session })).status).toBe(200);
    expect((await ok(call("PATCH", `/internal/users/${boss.id}`, master(orgA), { role: "member" }), 200)).role).toBe(
      "member",
    );
    expect((await call("GET", "/internal/teams", { session })).status).toBe(403);
  });
});
