import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../../test/test-control-plane.js";
import { TEST_MASTER_KEY } from "../../test/test-config.js";

let test: TestControlPlane;
let clock = Date.now();

interface Res {
  status: number;
  body: any;
  headers: Headers;
}

async function call(
  method: string,
  path: string,
  opts: { body?: unknown; cookie?: string; csrf?: string; bearer?: string; from?: string } = {},
): Promise<Res> {
  const headers: Record<string, string> = {};
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  if (opts.cookie) headers.cookie = `tollgate_session=${opts.cookie}`;
  if (opts.csrf) headers["x-csrf-token"] = opts.csrf;
  if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`;
  if (opts.from) return callFrom(opts.from, method, path, headers, opts.body);
  const res = await fetch(test.base + path, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

/** The same call from another loopback address, for the per-address block. */
function callFrom(
  from: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: unknown,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port: test.port, path, method, localAddress: from, headers },
      (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") h.set(k, v);
          resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined, headers: h });
        });
      },
    );
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

function cookieOf(res: Res): string {
  const m = /tollgate_session=([^;]*)/.exec(res.headers.get("set-cookie") ?? "");
  return m![1]!;
}

async function signIn(): Promise<{ cookie: string; csrf: string; body: any; setCookie: string }> {
  const res = await call("POST", "/internal/sessions", { body: { credential: TEST_MASTER_KEY } });
  expect(res.status).toBe(201);
  return {
    cookie: cookieOf(res),
    csrf: res.body.csrf_token,
    body: res.body,
    setCookie: res.headers.get("set-cookie")!,
  };
}

beforeAll(async () => {
  test = await startTestControlPlane({
    bruteForce: { enabled: true, maxFailedAttempts: 3, ttlMs: 60_000 },
    sessions: { idleMs: 30 * 60_000, maxAgeMs: 12 * 3_600_000 },
  });
  // The sessions read the clock of the context; the tests move it.
  test.cp.context!.now = () => new Date(clock);
});

afterAll(async () => {
  await test?.stop();
});

describe("dashboard sessions", () => {
  it("exchanges the master key for an HttpOnly SameSite=Strict cookie and a CSRF token, audited without the key", async () => {
    const { cookie, csrf, body, setCookie } = await signIn();
    expect(setCookie).toMatch(/httponly/i);
    expect(setCookie).toMatch(/samesite=strict/i);
    expect(setCookie).toMatch(/path=\//i);
    expect(setCookie).not.toMatch(/secure/i); // plain HTTP here
    expect(body.session.actor).toEqual({ kind: "master", id: null, role: "admin", org_id: null });
    expect(Date.parse(body.session.expires_at) - clock).toBe(12 * 3_600_000);
    expect(Date.parse(body.session.idle_expires_at) - clock).toBe(30 * 60_000);
    expect(csrf).toMatch(/^[\w-]{20,}$/);
    expect(cookie).not.toContain(TEST_MASTER_KEY);

    const current = await call("GET", "/internal/sessions/current", { cookie });
    expect(current.status).toBe(200);
    expect(current.body.csrf_token).toBe(csrf);
    expect(current.body.session.id).toBe(body.session.id);

    // The cookie authenticates the admin API; reads need no CSRF token.
    expect((await call("GET", "/internal/teams", { cookie })).status).toBe(200);

    const audit = await call("GET", `/internal/audit-logs?target_id=${body.session.id}`, { bearer: TEST_MASTER_KEY });
    expect(audit.body.data).toMatchObject([
      { action: "session.open", actor: "master_key", target_type: "dashboard_session" },
    ]);
    expect(JSON.stringify(audit.body)).not.toContain(TEST_MASTER_KEY);
    expect(JSON.stringify(audit.body)).not.toContain(cookie);
  });

  it("requires the CSRF token on every unsafe method authenticated by the cookie, and audits the session's actor", async () => {
    const { cookie, csrf } = await signIn();
    const refused = await call("POST", "/internal/teams", { cookie, body: { name: "no-csrf" } });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("csrf_required");
    const forged = await call("POST", "/internal/teams", {
      cookie,
      csrf: "forged-token-forged-token",
      body: { name: "forged" },
    });
    expect(forged.status).toBe(403);
    expect(
      (await call("GET", "/internal/teams", { cookie })).body.data.map((t: { name: string }) => t.name),
    ).not.toContain("no-csrf");

    const created = await call("POST", "/internal/teams", { cookie, csrf, body: { name: "with-csrf" } });
    expect(created.status).toBe(201);
    const audit = await call("GET", `/internal/audit-logs?target_id=${created.body.id}`, { bearer: TEST_MASTER_KEY });
    expect(audit.body.data[0]).toMatchObject({ action: "team.create", actor: "master_key" });

    // Field-named errors pass through unchanged.
    const bad = await call("POST", "/internal/teams", { cookie, csrf, body: { name: "" } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe("name");
  });

  it("refuses a forged or unknown cookie with session_required and clears it", async () => {
    const res = await call("GET", "/internal/teams", { cookie: "A".repeat(43) });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("session_required");
    expect(res.headers.get("set-cookie")).toMatch(/tollgate_session=;/);
    expect((await call("GET", "/internal/sessions/current", { cookie: "B".repeat(43) })).body.error.code).toBe(
      "session_required",
    );
    expect((await call("GET", "/internal/sessions/current")).status).toBe(401);
  });

  it("ends a session after the idle timeout and after the absolute maximum age", async () => {
    const idle = await signIn();
    clock += 29 * 60_000;
    expect((await call("GET", "/internal/teams", { cookie: idle.cookie })).status).toBe(200); // refreshes the idle timer
    clock += 29 * 60_000;
    expect((await call("GET", "/internal/teams", { cookie: idle.cookie })).status).toBe(200);
    clock += 31 * 60_000;
    expect((await call("GET", "/internal/teams", { cookie: idle.cookie })).body.error.code).toBe("session_required");

    const busy = await signIn();
    for (let i = 0; i < 25; i++) {
      clock += 29 * 60_000;
      const res = await call("GET", "/internal/sessions/current", { cookie: busy.cookie });
      if (i < 24) expect(res.status).toBe(200);
      else expect(res.body.error.code).toBe("session_required"); // 12 h 5 min after sign-in
    }
  });

  it("signs out: the row is deleted, the cookie cleared, and the close audited", async () => {
    const { cookie, csrf, body } = await signIn();
    expect((await call("DELETE", "/internal/sessions/current", { cookie })).body.error.code).toBe("csrf_required");
    const out = await call("DELETE", "/internal/sessions/current", { cookie, csrf });
    expect(out.status).toBe(204);
    expect(out.headers.get("set-cookie")).toMatch(/tollgate_session=;/);
    expect((await call("GET", "/internal/sessions/current", { cookie })).status).toBe(401);
    const audit = await call("GET", `/internal/audit-logs?target_id=${body.session.id}`, { bearer: TEST_MASTER_KEY });
    expect(audit.body.data.map((a: { action: string }) => a.action)).toEqual(["session.close", "session.open"]);
  });

  it("lets a Bearer credential win over any cookie, and a master session pick the organization by header", async () => {
    const both = await fetch(`${test.base}/internal/teams`, {
      headers: { authorization: `Bearer ${TEST_MASTER_KEY}`, cookie: "tollgate_session=" + "C".repeat(43) },
    });
    expect(both.status).toBe(200);
    const { cookie, csrf } = await signIn();
    const org = await call("POST", "/internal/orgs", { cookie, csrf, body: { name: "acme-sessions" } });
    expect(org.status).toBe(201);
    const res = await fetch(`${test.base}/internal/teams`, {
      method: "POST",
      headers: {
        cookie: `tollgate_session=${cookie}`,
        "x-csrf-token": csrf,
        "content-type": "application/json",
        "tollgate-organization": org.body.id,
      },
      body: JSON.stringify({ name: "acme-team" }),
    });
    expect(res.status).toBe(201);
    const inAcme = await fetch(`${test.base}/internal/teams`, {
      headers: { cookie: `tollgate_session=${cookie}`, "tollgate-organization": org.body.id },
    });
    expect(((await inAcme.json()) as any).data.map((t: { name: string }) => t.name)).toEqual(["acme-team"]);
  });

  it("names the problem of a bad sign-in body", async () => {
    const missing = await call("POST", "/internal/sessions", { body: {} });
    expect(missing.status).toBe(400);
    expect(missing.body.error.field).toBe("credential");
    const extra = await call("POST", "/internal/sessions", { body: { credential: "x", password: "y" } });
    expect(extra.body.error.field).toBe("password");
  });

  it("answers 401 invalid_credential, then blocks the address with 429 too_many_attempts and Retry-After", async () => {
    for (let i = 0; i < 3; i++) {
      const res = await call("POST", "/internal/sessions", {
        from: "127.0.0.4",
        body: { credential: "not-the-master-key" },
      });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe("invalid_credential");
    }
    const blocked = await call("POST", "/internal/sessions", {
      from: "127.0.0.4",
      body: { credential: TEST_MASTER_KEY },
    });
    expect(blocked.status).toBe(429);
    expect(blocked.body.error.code).toBe("too_many_attempts");
    expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(blocked.headers.get("set-cookie")).toBeNull();
    const other = await call("POST", "/internal/sessions", {
      from: "127.0.0.5",
      body: { credential: TEST_MASTER_KEY },
    });
    expect(other.status).toBe(201);
  });
});
