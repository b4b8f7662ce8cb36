import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabase } from "@tollgate/testkit";
import { startFakeOpenAI, type FakeOpenAI } from "@tollgate/testkit";
import {
  createTempDir,
  startControlPlane,
  startGateway,
  waitFor,
  type ControlPlaneProcess,
  type GatewayProcess,
  type TempDir,
} from "@tollgate/testkit";

/**
 * The proof that no secret leaks: a full flow through a real control plane and two
 * gateways, then every log, SQLite file, database dump, /metrics page and API answer
 * is searched for every secret the flow created. Only the one-shot reveals may hold one.
 */
const MASTER_KEY = "sk-scan-master-key-0123456789abcdefghijklmn";
const UPSTREAM_KEY = "sk-upstream-scan-credential-0123456789abcdef";
/** SSO is configured (its provider unreachable): the client secret must show up nowhere either. */
const SSO_CLIENT_SECRET = "GOCSPX-scan-client-secret-0123456789abcdef";

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

describe("no secret in any log, file, dump, metric or answer", () => {
  const db = testDatabase("scan");
  let tmp: TempDir;
  let upstream: FakeOpenAI;
  let cp: ControlPlaneProcess;
  const gateways: GatewayProcess[] = [];
  const secrets = new Set<string>([MASTER_KEY, UPSTREAM_KEY, SSO_CLIENT_SECRET]);
  /** Every answer body received, except the one-shot reveals. */
  const answers: Array<{ what: string; body: string }> = [];

  /** An admin call whose answer is recorded; `reveal` marks the one-shot answers that may hold a secret. */
  async function admin(method: string, path: string, body?: unknown, reveal = false) {
    const res = await fetch(cp.url + path, {
      method,
      headers: {
        authorization: `Bearer ${MASTER_KEY}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (!reveal) answers.push({ what: `${method} ${path}`, body: text });
    return { status: res.status, body: text ? (JSON.parse(text) as any) : null };
  }

  async function client(gw: GatewayProcess, key: string, model = "gpt-4o-mini", headers: Record<string, string> = {}) {
    const res = await fetch(`${gw.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "scan me" }] }),
    });
    answers.push({ what: `gateway ${gw.port} chat`, body: await res.text() });
    return res.status;
  }

  beforeAll(async () => {
    tmp = await createTempDir("scan-");
    upstream = await startFakeOpenAI({ expectedApiKey: UPSTREAM_KEY });
    cp = await startControlPlane({
      masterKey: MASTER_KEY,
      dataDir: join(tmp.path, "cp"),
      ...(db ? { databaseUrl: db.url, databaseSchema: db.schema } : {}),
      env: {
        GOOGLE_CLIENT_ID: "scan-client",
        GOOGLE_CLIENT_SECRET: SSO_CLIENT_SECRET,
        AUTH_BASE_URL: "http://127.0.0.1:8000",
        OIDC_ISSUER: "http://127.0.0.1:9",
      },
    });
    const token = (await admin("POST", "/internal/gateway-tokens", { name: "scan" }, true)).body.token;
    secrets.add(token);
    for (const name of ["gw-a", "gw-b"]) {
      gateways.push(
        await startGateway({
          controlPlaneUrl: cp.grpcUrl,
          token,
          name,
          dataDir: join(tmp.path, name),
          openaiBaseUrl: upstream.baseUrl,
          openaiApiKey: UPSTREAM_KEY,
        }),
      );
    }
    await Promise.all(gateways.map((g) => g.waitForReady(30_000)));
  });

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await cp?.stop();
    await upstream?.close();
    await db?.drop();
    await tmp?.cleanup();
  });

  it("runs the full flow, then finds no secret outside the one-shot reveals", async () => {
    // Admin flow, including errors.
    const team = (await admin("POST", "/internal/teams", { name: "scan-team", tpm_limit: 1000 })).body;
    const user = (await admin("POST", "/internal/users", { external_id: "scan@example.com", team_id: team.id })).body;
    const keys: Array<{ id: string; key: string; key_prefix: string }> = [];
    for (const name of ["one", "two", "three"]) {
      const k = (await admin("POST", "/internal/api-keys", { name, user_id: user.id, metadata: { env: "scan" } }, true))
        .body;
      secrets.add(k.key);
      keys.push(k);
    }
    const rotated = (await admin("POST", `/internal/api-keys/${keys[0]!.id}/rotate`, { grace_seconds: 60 }, true)).body;
    secrets.add(rotated.key);
    const ephemeral = (
      await admin("POST", `/internal/api-keys/${keys[1]!.id}/ephemeral-tokens`, { ttl_seconds: 600 }, true)
    ).body;
    secrets.add(ephemeral.token);
    await admin("PATCH", `/internal/api-keys/${keys[2]!.id}`, { allowed_models: ["gpt-4o*"] });
    await admin("POST", `/internal/api-keys/${keys[1]!.id}/deactivate`);
    await admin("POST", `/internal/api-keys/${keys[1]!.id}/activate`);
    await admin("POST", "/internal/api-keys", { name: "bad", user_id: "nope" });
    await admin("POST", "/internal/teams", "{broken");
    await admin("GET", "/internal/api-keys");
    await admin("GET", `/internal/api-keys/${keys[0]!.id}`);
    await admin("GET", "/internal/audit-logs?limit=1000");
    await admin("GET", "/internal/gateway-tokens");
    await admin("GET", "/internal/gateways");
    // An admin token: minted (shown once), used as Bearer, used to open a dashboard session, revoked.
    const adminToken = (await admin("POST", "/internal/admin-tokens", { name: "scan-ci", role: "admin" }, true)).body;
    secrets.add(adminToken.token);
    for (const path of ["/internal/api-keys", "/internal/admin-tokens", "/internal/audit-logs?limit=1000"]) {
      const r = await fetch(cp.url + path, { headers: { authorization: `Bearer ${adminToken.token}` } });
      expect(r.status).toBe(200);
      answers.push({ what: `admin token GET ${path}`, body: await r.text() });
    }
    const opened = await fetch(`${cp.url}/internal/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ credential: adminToken.token }),
    });
    expect(opened.status).toBe(201);
    const sessionCookie = /tollgate_session=([^;]*)/.exec(opened.headers.get("set-cookie")!)![1]!;
    const csrf = ((await opened.json()) as { csrf_token: string }).csrf_token;
    secrets.add(sessionCookie);
    secrets.add(csrf);
    const viaSession = await fetch(`${cp.url}/internal/sessions/current`, {
      headers: { cookie: `tollgate_session=${sessionCookie}` },
    });
    answers.push({ what: "session current", body: (await viaSession.text()).replace(csrf, "") });
    await admin("DELETE", `/internal/admin-tokens/${adminToken.id}`);
    await fetch(`${cp.url}/internal/teams`, { headers: { authorization: `Bearer ${adminToken.token}` } }).then(
      async (r) => answers.push({ what: "revoked admin token", body: await r.text() }),
    );
    // SSO sign-in against an unreachable provider: a 502 page, no secret in it.
    await fetch(`${cp.url}/auth/login`, { redirect: "manual" }).then(async (r) =>
      answers.push({ what: "sso login", body: await r.text() }),
    );
    await fetch(`${cp.url}/auth/callback?code=scan-code&state=forged`).then(async (r) =>
      answers.push({ what: "sso callback", body: await r.text() }),
    );
    await fetch(`${cp.url}/internal/teams`, { headers: { authorization: `Bearer ${MASTER_KEY}-wrong` } }).then(
      async (r) => answers.push({ what: "wrong master key", body: await r.text() }),
    );

    // Client traffic through both gateways: valid, rotated-out, ephemeral, scoped, forged, deleted.
    for (const gw of gateways) {
      await waitFor(async () => (await client(gw, rotated.key)) === 200, { timeoutMs: 5000, intervalMs: 20 });
      expect(await client(gw, keys[0]!.key)).toBe(200); // still in its grace period
      expect(await client(gw, ephemeral.token)).toBe(200);
      expect(await client(gw, keys[2]!.key, "gpt-3.5-turbo")).toBe(403);
      // One character changed: the checksum no longer matches.
      const typo = keys[1]!.key.slice(0, -1) + (keys[1]!.key.endsWith("x") ? "y" : "x");
      expect(await client(gw, typo)).toBe(401);
      const openai = new OpenAI({ apiKey: keys[1]!.key, baseURL: gw.baseUrl, maxRetries: 0 });
      const stream = await openai.chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "stream" }],
        stream: true,
      });
      for await (const chunk of stream) answers.push({ what: "stream chunk", body: JSON.stringify(chunk) });
    }
    await admin("DELETE", `/internal/api-keys/${keys[2]!.id}`);
    for (const gw of gateways)
      await waitFor(async () => (await client(gw, keys[2]!.key)) === 401, { timeoutMs: 5000, intervalMs: 20 });
    for (const gw of gateways)
      answers.push(
        { what: `metrics ${gw.port}`, body: await gw.metrics() },
        { what: `readyz ${gw.port}`, body: JSON.stringify((await gw.readyz()).body) },
      );
    answers.push({ what: "control-plane metrics", body: await (await fetch(`${cp.url}/metrics`)).text() });
    // Let the gateways' batched request logs reach their SQLite files.
    await new Promise((r) => setTimeout(r, 500));

    // Where secrets must never be: logs, SQLite files, the database, metrics, answers.
    const places: Array<{ what: string; text: string }> = [];
    for (const a of answers) places.push({ what: `answer: ${a.what}`, text: a.body });
    places.push({ what: "control-plane log", text: cp.logs() });
    for (const gw of gateways) places.push({ what: `gateway log ${gw.port}`, text: gw.logs() });
    for (const file of filesUnder(tmp.path)) places.push({ what: file, text: readFileSync(file).toString("latin1") });
    if (db) {
      const dump = execFileSync("pg_dump", ["--schema", db.schema, "--data-only", db.url], {
        maxBuffer: 256 * 1024 * 1024,
      }).toString("utf8");
      expect(dump).toContain(keys[0]!.key_prefix); // the dump is real: it holds the public prefix
      places.push({ what: "pg_dump", text: dump });
    }
    const sqlite = filesUnder(tmp.path).filter((f) => /gateway\.db/.test(f));
    expect(sqlite.length).toBeGreaterThanOrEqual(2);
    expect(secrets.size).toBeGreaterThanOrEqual(8);
    const leaks: string[] = [];
    for (const place of places) {
      for (const secret of secrets)
        if (place.text.includes(secret)) leaks.push(`${place.what} holds ${secret.slice(0, 8)}…`);
    }
    expect(leaks).toEqual([]);
    expect(places.length).toBeGreaterThan(40);
  }, 120_000);
});
