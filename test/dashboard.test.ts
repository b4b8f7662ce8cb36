import { tmpdir } from "node:os";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import OpenAI from "openai";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabase } from "@tollgate/testkit";
import { startFakeOpenAI, type FakeOpenAI } from "@tollgate/testkit";
import {
  createTempDir,
  repoRoot,
  startControlPlane,
  startGateway,
  waitFor,
  type ControlPlaneProcess,
  type GatewayProcess,
  type TempDir,
} from "@tollgate/testkit";

/**
 * The dashboard in a real browser (Debian's chromium, no browser download)
 * against a real control plane and a real gateway, the official openai client
 * using the key the browser revealed. Screenshots land in docs/screenshots/.
 */
const MASTER_KEY = "sk-dashboard-master-key-0123456789abcdefgh";
const UPSTREAM_KEY = "sk-upstream-dashboard-0123456789";
const CHROMIUM = "/usr/bin/chromium";
// The README's pictures are refreshed on request (UPDATE_SCREENSHOTS=1); a plain run keeps the tree clean.
const SHOTS = process.env.UPDATE_SCREENSHOTS
  ? join(repoRoot, "docs", "screenshots")
  : join(tmpdir(), "tollgate-dashboard-screenshots");
const DASHBOARD_BUILD = join(repoRoot, "control-plane", "dashboard", "dist", "index.html");
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

describe("admin dashboard in a real browser", () => {
  const db = testDatabase("dashboard");
  let tmp: TempDir;
  let upstream: FakeOpenAI;
  let cp: ControlPlaneProcess;
  let gateway: GatewayProcess;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let dashboard: string;

  /** One chat completion through the gateway with the official client: its status. */
  const chat = async (key: string): Promise<number> => {
    const client = new OpenAI({ apiKey: key, baseURL: gateway.baseUrl, maxRetries: 0 });
    try {
      const res = await client.chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "hi from the dashboard" }],
      });
      expect(res.choices[0]!.message.content).toContain("hi from the dashboard");
      return 200;
    } catch (err) {
      if (err instanceof OpenAI.APIError && err.status !== undefined) return err.status;
      throw err;
    }
  };
  const eventually = (key: string, status: number) =>
    waitFor(async () => (await chat(key)) === status, {
      timeoutMs: 10_000,
      intervalMs: 25,
      message: `expected ${status} at the gateway`,
    });

  /** axe-core in the page: no serious or critical violation. */
  async function checkA11y(what: string) {
    if (!(await page.evaluate(() => "axe" in globalThis))) await page.addScriptTag({ content: axeSource });
    const violations = await page.evaluate(async () => {
      const g = globalThis as any;
      const result: { violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }> } =
        await g.axe.run(g.document, {
          resultTypes: ["violations"],
        });
      return result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
      }));
    });
    expect(
      violations.filter((v) => v.impact === "serious" || v.impact === "critical"),
      what,
    ).toEqual([]);
  }

  async function shot(name: string) {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  }

  async function goto(path: string, heading: string) {
    await page.getByRole("link", { name: path, exact: true }).click();
    await page.getByRole("heading", { level: 1, name: heading }).waitFor();
  }

  beforeAll(async () => {
    if (!existsSync(DASHBOARD_BUILD))
      throw new Error(`${DASHBOARD_BUILD} is missing: run \`pnpm build\` at the repository root first`);
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)`);
    mkdirSync(SHOTS, { recursive: true });
    tmp = await createTempDir("dashboard-");
    upstream = await startFakeOpenAI({ expectedApiKey: UPSTREAM_KEY });
    cp = await startControlPlane({
      masterKey: MASTER_KEY,
      dataDir: join(tmp.path, "cp"),
      ...(db ? { databaseUrl: db.url, databaseSchema: db.schema } : {}),
    });
    dashboard = `${cp.url}/dashboard`;
    const token = (await cp.admin.post("/internal/gateway-tokens", { name: "edge-1" })).body.token;
    gateway = await startGateway({
      controlPlaneUrl: cp.grpcUrl,
      token,
      name: "edge-1",
      dataDir: join(tmp.path, "gw"),
      openaiBaseUrl: upstream.baseUrl,
      openaiApiKey: UPSTREAM_KEY,
    });
    await gateway.waitForReady(30_000);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
    // bypassCSP lets the test inject axe-core; the app itself runs under its CSP otherwise unchanged.
    context = await browser.newContext({ viewport: { width: 1360, height: 860 }, bypassCSP: true });
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: cp.url });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
    await cp?.stop();
    await upstream?.close();
    await db?.drop();
    await tmp?.cleanup();
  });

  it("signs in with the master key, which is then nowhere in the browser", async () => {
    await page.goto(`${dashboard}/configuration/api-keys`);
    await page.getByRole("heading", { name: "Sign in to Tollgate" }).waitFor();
    await checkA11y("sign-in");
    await shot("sign-in");
    await page.getByLabel("Master key").fill("not-the-master-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("That key is not valid").waitFor();

    await page.getByLabel("Master key").fill(MASTER_KEY);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { level: 1, name: "API keys" }).waitFor();
    await page.getByText("No API keys yet").waitFor();
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === "tollgate_session")!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/" });
    const stored = await page.evaluate(() => {
      const g = globalThis as any;
      return JSON.stringify({ ...g.localStorage }) + JSON.stringify({ ...g.sessionStorage }) + g.document.cookie;
    });
    expect(stored).not.toContain(MASTER_KEY);
    expect(session.value).not.toContain(MASTER_KEY);
    await checkA11y("api keys, empty");
    await shot("api-keys-empty");
  });

  it("creates a user on the Users page, with field-named errors for bad input", async () => {
    await goto("Users", "Users");
    await page.getByText("No users yet").waitFor();
    await checkA11y("users, empty");
    await page.getByRole("button", { name: "Create user" }).first().click();
    const dialog = page.getByRole("dialog", { name: "Create user" });
    await dialog.getByLabel("Requests/min (all the user's keys)").fill("-3");
    await dialog.getByRole("button", { name: "Save" }).click();
    await dialog.getByText("is required").waitFor();
    await dialog.getByText("must be a whole number of at least 1, or empty for no limit").waitFor();
    expect((await cp.admin.get("/internal/users")).body.data).toEqual([]);
    await dialog.getByLabel("External id (e.g. email)").fill("alice@example.com");
    await dialog.getByLabel("Requests/min (all the user's keys)").fill("");
    await dialog.getByRole("button", { name: "Save" }).click();
    await page.getByRole("cell", { name: "alice@example.com" }).waitFor();
    await shot("users");
  });

  let revealedKey = "";

  it("creates a key with limits and scopes; the form and the API name bad fields; the reveal is seed 004's", async () => {
    await goto("API keys", "API keys");
    await page.getByRole("button", { name: "Create Key" }).first().click();
    const dialog = page.getByRole("dialog", { name: "Create Key" });
    // The form's own checks: nothing is sent.
    await dialog.getByLabel("Requests/min").fill("lots");
    await dialog.getByRole("button", { name: "Create Key" }).click();
    await dialog.getByText("must be a whole number of at least 1").waitFor();
    await dialog.getByText("is required").waitFor();
    await checkA11y("create key, basic tab with errors");
    await shot("create-key-basic");

    await dialog.getByLabel("Key Name").fill("Production API");
    await dialog.getByLabel("Owner (Create Key for User)").selectOption({ label: "alice@example.com" });
    await dialog.getByLabel("Expiration").selectOption("90d");
    await dialog.getByLabel("Requests/min").fill("600");
    await dialog.getByLabel("Tokens/min").fill("100000");
    await dialog.getByLabel("Budget ($)").fill("25");
    await dialog.getByLabel("Budget Alert Thresholds (%)").fill("50,80,100");
    await dialog.getByRole("switch", { name: "gemini" }).uncheck();
    // The API's check: an IP allowlist entry that is no IP comes back named, beside its field.
    await dialog.getByRole("tab", { name: "Advanced" }).click();
    await dialog.getByLabel("Allowed Models").fill("gpt-4o-mini, gpt-4o");
    await dialog.getByLabel("IP Allowlist").fill("127.0.0.1, not-an-ip");
    await dialog.getByLabel("Metadata (JSON)").fill('{"team": "backend", "env": "production"}');
    await dialog.getByRole("button", { name: "Create Key" }).click();
    await dialog.getByText('"not-an-ip" is not an IP address or CIDR').waitFor();
    expect((await cp.admin.get("/internal/api-keys")).body.data).toEqual([]);
    await shot("create-key-advanced");
    await dialog.getByLabel("IP Allowlist").fill("127.0.0.1, ::1");

    await dialog.getByRole("tab", { name: "MCP" }).click();
    await dialog.getByRole("switch", { name: /MCP Enabled/ }).check();
    await dialog.getByLabel("MCP Access Mode").selectOption("allow_list");
    await dialog.getByLabel("Allowed MCP Servers").fill("github");
    await dialog.getByLabel("Add a tool of github").fill("create_issue");
    await dialog.getByRole("button", { name: "Add tool" }).click();
    await dialog.getByRole("checkbox", { name: "create_issue" }).waitFor();
    await checkA11y("create key, MCP tab");
    await shot("create-key-mcp");
    await dialog.getByRole("button", { name: "Create Key" }).click();

    const reveal = page.getByRole("dialog", { name: "API Key created" });
    await reveal.getByText("API Key created! Copy it now", { exact: true }).waitFor();
    await reveal
      .getByText("This key will not be shown again. Make sure to save it securely.", { exact: true })
      .waitFor();
    const shown = (await reveal.getByTestId("revealed-key").textContent())!.trim();
    expect(
      await reveal
        .getByTestId("revealed-key")
        .evaluate((el: any) => (globalThis as any).getComputedStyle(el).userSelect),
    ).toBe("all");
    await reveal.getByRole("button", { name: "Copy" }).click();
    await reveal.getByRole("button", { name: "Copied!" }).waitFor();
    revealedKey = await page.evaluate((): Promise<string> => (globalThis as any).navigator.clipboard.readText());
    expect(revealedKey).toBe(shown);
    expect(revealedKey).toMatch(/^llmp_/);
    await checkA11y("reveal");
    await shot("key-reveal");
    // "Copied!" flashes back to "Copy".
    await reveal.getByRole("button", { name: "Copy", exact: true }).waitFor({ timeout: 5000 });
    await reveal.getByRole("button", { name: "Done" }).click();

    const key = (await cp.admin.get("/internal/api-keys")).body.data[0];
    expect(key).toMatchObject({
      name: "Production API",
      owner: "alice@example.com",
      rpm_limit: 600,
      tpm_limit: 100000,
      budget_usd: 25,
      budget_alert_thresholds: [50, 80, 100],
      allowed_providers: ["openai", "anthropic", "azure-openai"],
      allowed_models: ["gpt-4o-mini", "gpt-4o"],
      ip_allowlist: ["127.0.0.1", "::1"],
      metadata: { team: "backend", env: "production" },
      mcp_enabled: true,
      mcp_access_mode: "allow_list",
      mcp_servers: ["github"],
      mcp_tools: { github: ["create_issue"] },
    });
    await page.getByRole("cell", { name: "Production API", exact: true }).waitFor();
    await checkA11y("api keys list");
    await shot("api-keys");
  });

  it("the revealed key works at the gateway with the official openai client", async () => {
    await eventually(revealedKey, 200);
  });

  it("issues an ephemeral token from the key's detail dialog, accepted at the gateway", async () => {
    await page.getByRole("button", { name: "Production API", exact: true }).click();
    const detail = page.getByRole("dialog", { name: "Production API" });
    await detail.getByRole("button", { name: "Ephemeral Token" }).click();
    await detail.getByLabel("Expires In (seconds)").fill("10");
    await detail.getByRole("button", { name: "Issue token" }).click();
    await detail.getByText("must be a whole number of seconds from 60 to 86400").waitFor();
    await detail.getByLabel("Expires In (seconds)").fill("600");
    await detail.getByRole("button", { name: "Issue token" }).click();
    const token = (await detail.getByTestId("ephemeral-token").textContent())!.trim();
    expect(token).not.toBe(revealedKey);
    await eventually(token, 200);
    await detail.getByRole("button", { name: "Close" }).click();
  });

  it("edits a key's name and limits; the API's field-named error lands beside the field", async () => {
    await page.getByRole("button", { name: "Production API", exact: true }).click();
    const detail = page.getByRole("dialog", { name: "Production API" });
    await detail.getByRole("button", { name: "Edit" }).click();
    await detail.getByLabel("Key Name").fill("x".repeat(201));
    await detail.getByRole("button", { name: "Save" }).click();
    await detail.getByText("must be at most 200 characters").waitFor();
    await detail.getByLabel("Key Name").fill("Production API");
    await detail.getByLabel("Requests/min").fill("1200");
    await detail.getByRole("button", { name: "Save" }).click();
    await detail.getByText("1,200").waitFor();
    expect((await cp.admin.get("/internal/api-keys?search=Production")).body.data[0].rpm_limit).toBe(1200);
    await detail.getByRole("button", { name: "Close" }).click();
  });

  it("rotates in the browser: the old key gets 401 at the gateway, the new one 200", async () => {
    await page.getByRole("button", { name: "Production API", exact: true }).click();
    const detail = page.getByRole("dialog", { name: "Production API" });
    await detail.getByRole("button", { name: "Deactivate" }).waitFor();
    await checkA11y("key detail");
    await shot("key-detail");
    await detail.getByRole("button", { name: "Rotate Key" }).click();
    await detail.getByRole("button", { name: "Rotate Key" }).click();
    const reveal = page.getByRole("dialog", { name: "API Key rotated" });
    await reveal.getByText("API Key created! Copy it now").waitFor();
    const rotated = (await reveal.getByTestId("revealed-key").textContent())!.trim();
    expect(rotated).not.toBe(revealedKey);
    await reveal.getByRole("button", { name: "Done" }).click();
    await eventually(revealedKey, 401);
    await eventually(rotated, 200);
    revealedKey = rotated;
  });

  it("deactivates and activates by status", async () => {
    await page.getByRole("button", { name: "Production API", exact: true }).click();
    let detail = page.getByRole("dialog", { name: "Production API" });
    await detail.getByRole("button", { name: "Deactivate" }).click();
    await detail.getByRole("button", { name: "Activate" }).waitFor();
    await eventually(revealedKey, 401);
    await detail.getByRole("button", { name: "Close" }).click();
    await page
      .getByRole("row", { name: /Production API/ })
      .getByText("inactive")
      .waitFor();

    await page.getByLabel("Status").selectOption("inactive");
    await page.getByRole("cell", { name: "Production API", exact: true }).waitFor();
    await page.getByLabel("Status").selectOption("active");
    await page.getByText("No key matches").waitFor();
    await page.getByLabel("Status").selectOption("");

    await page.getByRole("button", { name: "Production API", exact: true }).click();
    detail = page.getByRole("dialog", { name: "Production API" });
    await detail.getByRole("button", { name: "Activate" }).click();
    await detail.getByRole("button", { name: "Deactivate" }).waitFor();
    await eventually(revealedKey, 200);
    await detail.getByRole("button", { name: "Close" }).click();
  });

  it("searches, sorts and pages on the server", async () => {
    const user = (await cp.admin.get("/internal/users")).body.data[0].id;
    const names = Array.from({ length: 30 }, (_, i) => `batch-${String(i).padStart(2, "0")}`);
    await cp.admin.post("/internal/api-keys/bulk", { keys: names.map((name) => ({ name, user_id: user })) });
    const rows = page.locator("tbody tr");
    await page.getByLabel("Search by name or key preview").fill("batch-");
    await waitFor(async () => (await rows.count()) === 25);
    await page.getByRole("button", { name: "Next" }).click();
    await page.getByText("Page 2").waitFor();
    await waitFor(async () => (await rows.count()) === 5);
    await page.getByRole("button", { name: "Previous" }).click();
    await page.getByText("Page 1").waitFor();
    await page.getByRole("button", { name: /^Name/ }).click();
    await waitFor(async () => (await rows.first().textContent())?.includes("batch-00"));
    await page.getByRole("button", { name: /^Name/ }).click();
    await waitFor(async () => (await rows.first().textContent())?.includes("batch-29"));
    await page.getByLabel("Search by name or key preview").fill("batch-1");
    await waitFor(async () => (await rows.count()) === 10);
    await page.getByLabel("Search by name or key preview").fill("Production");
    await waitFor(async () => (await rows.count()) === 1);
  });

  it("deletes with the seed's confirmation; the key stops at the gateway", async () => {
    await page.getByRole("button", { name: "Delete Production API" }).click();
    const confirm = page.getByRole("dialog", { name: "Delete API Key" });
    await confirm
      .getByText("Are you sure you want to delete ‘Production API’? This action cannot be undone.", { exact: true })
      .waitFor();
    await checkA11y("delete confirmation");
    await shot("delete-confirm");
    await confirm.getByRole("button", { name: "Delete" }).click();
    await page.getByText("No key matches").waitFor();
    await eventually(revealedKey, 401);
    expect((await cp.admin.get("/internal/api-keys?search=Production")).body.data).toEqual([]);
  });

  it("shows every action, with its actor, in the audit log", async () => {
    await goto("Audit log", "Audit log");
    for (const action of [
      "session.open",
      "user.create",
      "api_key.create",
      "api_key.rotate",
      "api_key.deactivate",
      "api_key.activate",
      "api_key.delete",
    ]) {
      await page.getByRole("cell", { name: action, exact: true }).first().waitFor();
    }
    await page.getByLabel("Action").fill("api_key.rotate");
    await waitFor(async () => (await page.locator("tbody tr").count()) === 1);
    expect(await page.locator("tbody tr").first().textContent()).toContain("master_key");
    await page.getByLabel("Action").fill("");
    await waitFor(async () => (await page.locator("tbody tr").count()) > 5);
    // The actor filter runs on the server: a part of the label, in any case.
    await page.getByLabel("Actor").fill("no-such-actor");
    await page.getByText("Nothing recorded for these filters").waitFor();
    await page.getByLabel("Actor").fill("MASTER");
    await waitFor(async () => (await page.locator("tbody tr").count()) > 5);
    const actors = await page.locator("tbody tr td:nth-child(2)").allTextContents();
    expect(actors.every((a) => a === "master_key")).toBe(true);
    await page.getByLabel("Actor").fill("");
    expect(await page.content()).not.toContain(revealedKey);
    await checkA11y("audit log");
    await shot("audit-log");
  });

  it("shows the fleet, teams, usage and prices, each page accessible", async () => {
    await goto("Gateways", "Gateways");
    await page.getByRole("cell", { name: "edge-1" }).first().waitFor();
    await page.getByText("connected", { exact: true }).waitFor();
    await checkA11y("gateways");
    await shot("gateways");

    await goto("Teams", "Teams");
    await page.getByText("No teams yet").waitFor();
    await page.getByRole("button", { name: "Create team" }).click();
    const dialog = page.getByRole("dialog", { name: "Create team" });
    await dialog.getByLabel("Name").fill("engineering");
    await dialog.getByLabel("Tokens/min (whole team)").fill("200000");
    await dialog.getByRole("button", { name: "Save" }).click();
    await page.getByRole("cell", { name: "engineering" }).waitFor();
    // A duplicate name is refused by the API, the error beside the field.
    await page.getByRole("button", { name: "Create team" }).click();
    await dialog.getByLabel("Name").fill("engineering");
    await dialog.getByRole("button", { name: "Save" }).click();
    await dialog.getByText(/already exists/).waitFor();
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await checkA11y("teams");
    await shot("teams");

    // The requests sent earlier reach the control plane with the gateway's next usage report.
    await waitFor(async () => (await cp.admin.get("/internal/usage?group_by=day")).body.data.length > 0, {
      timeoutMs: 30_000,
      message: "usage reported by the gateway",
    });
    await goto("Usage", "Usage");
    await page.getByText("Total:").waitFor();
    // Rows are named, not numbered: the key that sent them was deleted above, and says so.
    await page
      .locator(".hlabel", { hasText: /^deleted key \(ak_/ })
      .first()
      .waitFor();
    await page.getByLabel("Break down by").selectOption("user");
    await page.locator(".hlabel", { hasText: "alice@example.com" }).waitFor();
    await checkA11y("usage");
    await shot("usage");

    await goto("Model prices", "Model prices");
    await page.locator("tbody tr").first().waitFor();
    await checkA11y("model prices");
    await shot("model-prices");
  });

  it("lets the master key switch organization; each sees only its own keys", async () => {
    const acme = (await cp.admin.post("/internal/orgs", { name: "acme" })).body.id;
    const acmeUser = (
      await cp.admin.request(
        "POST",
        "/internal/users",
        { external_id: "wile@acme.test" },
        { "tollgate-organization": acme },
      )
    ).body.id;
    await cp.admin.request(
      "POST",
      "/internal/api-keys",
      { name: "acme-only", user_id: acmeUser },
      { "tollgate-organization": acme },
    );
    await page.goto(`${dashboard}/configuration/api-keys`);
    await page.getByRole("heading", { level: 1, name: "API keys" }).waitFor();
    await page
      .getByRole("cell", { name: /^batch-/ })
      .first()
      .waitFor();
    await page.getByLabel("Organization").selectOption({ label: "acme" });
    await page.getByRole("cell", { name: "acme-only", exact: true }).waitFor();
    expect(await page.locator("tbody tr").count()).toBe(1);
    await page.getByLabel("Organization").selectOption({ index: 0 });
    await page
      .getByRole("cell", { name: /^batch-/ })
      .first()
      .waitFor();
  });

  it("reaches the page's controls by keyboard alone", async () => {
    await goto("API keys", "API keys");
    // A fresh load starts keyboard navigation at the top of the document.
    await page.reload();
    await page.getByRole("heading", { level: 1, name: "API keys" }).waitFor();
    const reached = new Set<string>();
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press("Tab");
      reached.add(
        await page.evaluate((): string => {
          const el = (globalThis as any).document.activeElement;
          return el?.getAttribute("aria-label") || el?.id || el?.textContent?.trim() || "";
        }),
      );
    }
    for (const control of ["key-search", "key-status", "Create Key", "API keys", "Sign out"])
      expect([...reached]).toContain(control);
  });

  it("refuses a cross-site POST without the CSRF token, and a forged session gets the sign-in page", async () => {
    const status = await page.evaluate(async () => {
      const res = await fetch("/internal/teams", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "csrf" }),
      });
      return { status: res.status, body: await res.json() };
    });
    expect(status).toMatchObject({ status: 403, body: { error: { code: "csrf_required" } } });
    expect((await cp.admin.get("/internal/teams")).body.data.map((t: { name: string }) => t.name)).not.toContain(
      "csrf",
    );

    await context.addCookies([
      { name: "tollgate_session", value: "forged-session-value-forged-session-value", url: cp.url },
    ]);
    await page.reload();
    await page.getByRole("heading", { name: "Sign in to Tollgate" }).waitFor();
  });

  it("adds under 500 KB of compressed assets", () => {
    const dir = join(repoRoot, "control-plane", "dashboard", "dist", "assets");
    const total = readdirSync(dir).reduce((sum, f) => sum + gzipSync(readFileSync(join(dir, f))).length, 0);
    expect(total).toBeLessThan(500 * 1024);
  });

  it("signs out: the session ends and the sign-in page shows", async () => {
    await page.getByLabel("Master key").fill(MASTER_KEY);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { level: 1, name: "API keys" }).waitFor();
    const cookie = (await context.cookies()).find((c) => c.name === "tollgate_session")!.value;
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in to Tollgate" }).waitFor();
    const after = await fetch(`${cp.url}/internal/sessions/current`, {
      headers: { cookie: `tollgate_session=${cookie}` },
    });
    expect(after.status).toBe(401);
  });
});
