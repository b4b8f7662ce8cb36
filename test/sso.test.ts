import { existsSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import Provider from "oidc-provider";
import OpenAI from "openai";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTempDir,
  getFreePort,
  startControlPlane,
  startFakeOpenAI,
  startGateway,
  testDatabase,
  waitFor,
  type ControlPlaneProcess,
  type FakeOpenAI,
  type GatewayProcess,
  type TempDir,
} from "@tollgate/testkit";
import { signState, stateKey } from "../control-plane/src/sso/state.js";

/**
 * SSO end to end: a real OpenID Connect provider (oidc-provider) in this process,
 * a real control plane and gateway as child processes, and Debian's Chromium
 * driven through /auth/login → the provider's login and consent → /auth/callback.
 * The key read from the page then calls the gateway with the official openai client.
 */
const CHROMIUM = "/usr/bin/chromium";
const MASTER_KEY = "sk-sso-master-key-0123456789abcdefghijklmnop";
const UPSTREAM_KEY = "sk-upstream-sso-0123456789abcdef";
const CLIENT_ID = "tollgate-test-client";
const CLIENT_SECRET = "oidc-client-secret-for-tests-0123456789abcdef";
const WARNING = "This key will not be shown again. Make sure to save it securely.";

/** An in-process OpenID Connect provider: any login name is accepted and becomes the email. */
async function startProvider(port: number, redirectUri: string): Promise<{ issuer: string; close(): Promise<void> }> {
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [redirectUri],
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_post",
      },
    ],
    claims: { openid: ["sub"], email: ["email", "email_verified"] },
    // The login name decides the account: "unverified…" has an unverified email.
    findAccount: async (_ctx: unknown, id: string) => ({
      accountId: id,
      claims: async () => ({ sub: id, email: id, email_verified: !id.startsWith("unverified") }),
    }),
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ["test-cookie-key-0123456789"] },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
  });
  const server = http.createServer(provider.callback());
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    issuer,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe("SSO sign-in through a real OpenID Connect provider", () => {
  const db = testDatabase("sso");
  let tmp: TempDir;
  let upstream: FakeOpenAI;
  let idp: { issuer: string; close(): Promise<void> };
  let cp: ControlPlaneProcess;
  let gw: GatewayProcess;
  let browser: Browser;
  let cpUrl: string;
  /** The callback URL of the first successful sign-in, to replay it. */
  let usedCallback: string;
  const keys: string[] = [];
  let teamId: string;

  /** Signs in with a fresh browser context; returns the page's status, text and key (when shown). */
  async function signIn(login: string, onCallback?: (url: string) => void, copy = false, dashboard = false) {
    const context = await browser.newContext();
    if (copy) await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: cpUrl });
    try {
      const page = await context.newPage();
      page.on("request", (req) => {
        if (req.url().startsWith(`${cpUrl}/auth/callback`)) onCallback?.(req.url());
      });
      await page.goto(`${cpUrl}/auth/login`, { waitUntil: "domcontentloaded" });
      await page.fill('input[name="login"]', login);
      await page.fill('input[name="password"]', "any password");
      await page.click('button[type="submit"]');
      await page.waitForSelector('button:has-text("Continue")');
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.url().startsWith(`${cpUrl}/auth/callback`)),
        page.click('button:has-text("Continue")'),
      ]);
      await page.waitForLoadState("domcontentloaded");
      const text = (await page.locator("main").textContent()) ?? "";
      const key =
        (await page.locator("#api-key").count()) > 0
          ? ((await page.locator("#api-key").textContent()) ?? undefined)
          : undefined;
      const prefix =
        (await page.locator("#key-prefix").count()) > 0
          ? ((await page.locator("#key-prefix").textContent()) ?? undefined)
          : undefined;
      let copied: string | undefined;
      if (copy && key) {
        await page.click("#copy-key");
        await page.waitForSelector('#copy-status:has-text("Copied")');
        copied = (await page.evaluate("navigator.clipboard.readText()")) as string;
      }
      const cookies = await context.cookies(cpUrl);
      // The page links to the dashboard, where the session just opened shows the member's own keys.
      let myKeys: { nav: string; main: string } | undefined;
      if (dashboard && prefix) {
        await page.click('a:has-text("My keys")');
        await page.waitForSelector(`main :text("${prefix}")`);
        myKeys = {
          nav: (await page.locator("nav.sidebar").textContent()) ?? "",
          main: (await page.locator("main").textContent()) ?? "",
        };
      }
      return {
        status: response.status(),
        text,
        key,
        prefix,
        copied,
        myKeys,
        session: cookies.find((c) => c.name === "tollgate_session"),
      };
    } finally {
      await context.close();
    }
  }

  /** Starts a sign-in without a browser: the state and browser cookie the control plane hands out. */
  async function startLogin(): Promise<{ state: string; cookie: string }> {
    const res = await fetch(`${cpUrl}/auth/login`, { redirect: "manual" });
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get("location")!);
    const cookie = res.headers
      .getSetCookie()
      .find((c) => c.startsWith("tollgate_sso="))!
      .split(";")[0]!;
    return { state: location.searchParams.get("state")!, cookie };
  }

  async function callback(query: Record<string, string>, cookie?: string) {
    const res = await fetch(`${cpUrl}/auth/callback?${new URLSearchParams(query)}`, {
      headers: cookie ? { cookie } : {},
    });
    return { status: res.status, text: await res.text(), setCookie: res.headers.getSetCookie() };
  }

  const keyCount = async () => (await cp.admin.get("/internal/api-keys?limit=1000")).body.data.length as number;
  const failures = async () =>
    (
      (await cp.admin.get("/internal/audit-logs?action=sso.sign_in_failed&limit=1000")).body.data as Array<{
        after: { reason: string };
      }>
    ).map((r) => r.after.reason);

  /** Each refused sign-in: a 4xx page, no key, one more audit row with this reason. */
  async function expectRefused(reason: string, attempt: () => Promise<{ status: number; text: string }>, status = 400) {
    const keysBefore = await keyCount();
    const rowsBefore = (await failures()).filter((r) => r === reason).length;
    const result = await attempt();
    expect(result.status).toBe(status);
    expect(result.text).toContain("Sign-in failed");
    expect(result.text).toContain("No API key was created.");
    expect(await keyCount()).toBe(keysBefore);
    expect((await failures()).filter((r) => r === reason).length).toBe(rowsBefore + 1);
  }

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)`);
    tmp = await createTempDir("sso-");
    upstream = await startFakeOpenAI({ expectedApiKey: UPSTREAM_KEY });
    const cpPort = await getFreePort();
    cpUrl = `http://127.0.0.1:${cpPort}`;
    idp = await startProvider(await getFreePort(), `${cpUrl}/auth/callback`);
    cp = await startControlPlane({
      masterKey: MASTER_KEY,
      dataDir: join(tmp.path, "cp"),
      port: cpPort,
      // PGlite migrations are CPU-bound: give a loaded machine room.
      startTimeoutMs: 120_000,
      ...(db ? { databaseUrl: db.url, databaseSchema: db.schema } : {}),
      env: {
        GOOGLE_CLIENT_ID: CLIENT_ID,
        GOOGLE_CLIENT_SECRET: CLIENT_SECRET,
        AUTH_BASE_URL: cpUrl,
        OIDC_ISSUER: idp.issuer,
        SSO_ALLOWED_DOMAINS: "example.com",
        ADMIN_EMAILS: "boss@example.com",
        SSO_KEY_RPM_LIMIT: "600",
        SSO_DEFAULT_TEAM: "engineering",
        // Above what the tests before the last one start (about 15): the last one runs the bucket dry.
        SSO_LOGIN_RATE_LIMIT: "30",
      },
    });
    // Created after the start: the default team is looked up at each sign-in.
    teamId = (await cp.admin.post("/internal/teams", { name: "engineering" })).body.id as string;
    const token = (await cp.admin.post("/internal/gateway-tokens", { name: "sso" })).body.token as string;
    gw = await startGateway({
      controlPlaneUrl: cp.grpcUrl,
      token,
      name: "gw-sso",
      dataDir: join(tmp.path, "gw"),
      openaiBaseUrl: upstream.baseUrl,
      openaiApiKey: UPSTREAM_KEY,
    });
    await gw.waitForReady(30_000);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    await cp?.stop();
    await idp?.close();
    await upstream?.close();
    await db?.drop();
    await tmp?.cleanup();
  });

  it("shows a new sso key once, which works at the gateway with the openai client", async () => {
    const result = await signIn("alice@example.com", (url) => (usedCallback = url), true);
    expect(result.status).toBe(200);
    expect(result.key).toMatch(/^llmp_/);
    expect(result.key!.startsWith(result.prefix!)).toBe(true);
    expect(result.text).toContain(WARNING);
    expect(result.copied).toBe(result.key);
    expect(result.text).toContain("alice@example.com");
    expect(result.session?.httpOnly).toBe(true);
    keys.push(result.key!);

    const listed = (await cp.admin.get("/internal/api-keys?limit=1000")).body.data as Array<{
      name: string;
      owner: string;
      key_prefix: string;
      rpm_limit: number;
    }>;
    const mine = listed.filter((k) => k.owner === "alice@example.com");
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ name: "sso", key_prefix: result.prefix, rpm_limit: 600 });

    const client = new OpenAI({ apiKey: result.key!, baseURL: gw.baseUrl, maxRetries: 0 });
    await waitFor(
      async () =>
        await client.chat.completions
          .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
          .then(
            () => true,
            () => false,
          ),
      {
        timeoutMs: 10_000,
        message: "the sso key never worked at the gateway",
      },
    );
  });

  it("a second sign-in yields a second key, and both work", async () => {
    const result = await signIn("alice@example.com", undefined, false, true);
    expect(result.status).toBe(200);
    expect(result.key).toMatch(/^llmp_/);
    expect(result.key).not.toBe(keys[0]);
    // The dashboard's "My keys" view: only that page in the menu, both of Alice's keys listed.
    expect(result.myKeys!.nav).toContain("Signed in as alice@example.com (member)");
    expect(result.myKeys!.nav).not.toContain("Gateways");
    expect(result.myKeys!.main).toContain(result.prefix!);
    expect(result.myKeys!.main).toContain(keys[0]!.slice(0, result.prefix!.length));
    keys.push(result.key!);
    const users = (await cp.admin.get("/internal/users?limit=1000")).body.data as Array<{
      external_id: string;
      role: string;
      team_id: string | null;
    }>;
    expect(users.filter((u) => u.external_id === "alice@example.com")).toEqual([
      expect.objectContaining({ role: "member", team_id: teamId }),
    ]);
    // The sign-in also opened a dashboard session with the member's role: their own keys only.
    const cookie = `tollgate_session=${result.session!.value}`;
    const own = await fetch(`${cpUrl}/internal/api-keys`, { headers: { cookie } });
    expect(own.status).toBe(200);
    const owners = ((await own.json()) as { data: Array<{ owner: string }> }).data.map((k) => k.owner);
    expect(owners).toEqual(["alice@example.com", "alice@example.com"]);
    expect((await fetch(`${cpUrl}/internal/teams`, { headers: { cookie } })).status).toBe(403);
    const current = (await (await fetch(`${cpUrl}/internal/sessions/current`, { headers: { cookie } })).json()) as {
      session: { actor: unknown };
    };
    expect(current.session.actor).toMatchObject({ kind: "user", role: "member", email: "alice@example.com" });
    for (const key of keys) {
      const client = new OpenAI({ apiKey: key, baseURL: gw.baseUrl, maxRetries: 0 });
      const reply = await client.chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "hi" }],
      });
      expect(reply.choices.length).toBeGreaterThan(0);
    }
  });

  it("an email of ADMIN_EMAILS signs in as an organization admin", async () => {
    const result = await signIn("boss@example.com");
    expect(result.status).toBe(200);
    expect(result.text).toContain("(admin)");
  });

  it("refuses a replayed callback (state and code used once)", async () => {
    expect(usedCallback).toBeDefined();
    await expectRefused("state_replayed", () => callback(Object.fromEntries(new URL(usedCallback).searchParams)));
  });

  it("refuses a replayed code under a fresh state", async () => {
    const code = new URL(usedCallback).searchParams.get("code")!;
    const { state, cookie } = await startLogin();
    await expectRefused("exchange_failed", () => callback({ code, state, iss: idp.issuer }, cookie));
  });

  it("refuses a forged state", async () => {
    const { state, cookie } = await startLogin();
    const [body] = state.split(".");
    await expectRefused("state_forged", () => callback({ code: "x", state: `${body}.${"A".repeat(43)}` }, cookie));
    await expectRefused("state_forged", () => callback({ code: "x", state: "not-a-state" }, cookie));
  });

  it("refuses a state older than 10 minutes", async () => {
    const expired = signState({ id: "sso_00000000000000000000000000", exp: Date.now() - 1000 }, stateKey(MASTER_KEY));
    await expectRefused("state_expired", () => callback({ code: "x", state: expired }));
  });

  it("refuses a callback from another browser (no binding cookie)", async () => {
    const { state } = await startLogin();
    await expectRefused("browser_mismatch", () => callback({ code: "x", state }));
  });

  it("refuses an error from the provider and a missing code", async () => {
    const denied = await startLogin();
    await expectRefused("provider_error", () =>
      callback({ error: "access_denied", state: denied.state }, denied.cookie),
    );
    const bare = await startLogin();
    await expectRefused("missing_code", () => callback({ state: bare.state }, bare.cookie));
  });

  it("refuses an unverified email and a domain not allowed", async () => {
    await expectRefused("email_unverified", () => signIn("unverified@example.com"), 403);
    await expectRefused("domain_not_allowed", () => signIn("mallory@elsewhere.test"), 403);
  });

  it("keeps the client secret, codes and keys out of the log and the audit rows", async () => {
    const audit = JSON.stringify((await cp.admin.get("/internal/audit-logs?limit=1000")).body);
    const logs = cp.logs();
    const metrics = await (await fetch(`${cpUrl}/metrics`)).text();
    expect(metrics).toMatch(/tollgate_cp_sso_sign_ins_total\{outcome="ok"\} [3-9]/);
    expect(metrics).toMatch(/tollgate_cp_sso_sign_ins_total\{outcome="state_replayed"\} 1/);
    expect(metrics).not.toContain("example.com");
    const code = new URL(usedCallback).searchParams.get("code")!;
    for (const secret of [CLIENT_SECRET, code, MASTER_KEY, ...keys]) {
      expect(audit).not.toContain(secret);
      expect(logs).not.toContain(secret);
      expect(metrics).not.toContain(secret);
    }
    expect(audit).toContain("sso.sign_in");
  });
  // Last: it empties this address's bucket.
  it("refuses more sign-in starts per minute from one address than SSO_LOGIN_RATE_LIMIT, with a page saying when to retry", async () => {
    let refused: Response | undefined;
    for (let i = 0; i < 200 && !refused; i++) {
      const res = await fetch(`${cpUrl}/auth/login`, { redirect: "manual" });
      if (res.status === 429) refused = res;
      else expect(res.status).toBe(302);
    }
    expect(refused).toBeDefined();
    const retryAfter = Number(refused!.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(2); // 30 a minute: one back every 2 s
    expect(refused!.headers.get("location")).toBeNull();
    expect(refused!.headers.getSetCookie().some((c) => c.startsWith("tollgate_sso="))).toBe(false);
    const html = await refused!.text();
    expect(html).toContain("Too many sign-ins were started from this address");
    expect(html).toContain(`Wait ${retryAfter} s`);
    const metrics = await (await fetch(`${cpUrl}/metrics`)).text();
    expect(metrics).toMatch(/tollgate_cp_sso_sign_ins_total\{outcome="rate_limited"\} [1-9]/);
  });
});
