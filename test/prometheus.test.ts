import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  chatStatus,
  createTempDir,
  getFreePort,
  repoRoot,
  startControlPlane,
  startGateway,
  tail,
  testDatabase,
  waitFor,
  type ControlPlaneProcess,
  type GatewayProcess,
  type TempDir,
} from "@tollgate/testkit";

/**
 * A real Prometheus server (Debian's `prometheus`, or $PROMETHEUS) scraping a real control
 * plane and two gateways with the shipped scrape config (deploy/prometheus/prometheus.yml,
 * targets moved to loopback, 1 s intervals) and the shipped alert rules, answering PromQL
 * about the fleet the way the dashboard and the alerts ask it.
 */
const MASTER_KEY = "sk-prometheus-master-key-0123456789abcdefgh";
/** How long Prometheus may take to show what the fleet did: generous, as the machine is shared. */
const DEADLINE_MS = 90_000;

function prometheusBinary(): string {
  const candidates = [process.env.PROMETHEUS, "prometheus", "/usr/bin/prometheus"].filter(Boolean) as string[];
  for (const c of candidates) if (spawnSync(c, ["--version"], { stdio: "ignore" }).status === 0) return c;
  throw new Error(
    "prometheus not found: install Debian's package (apt-get install prometheus; .ci/run does) or set PROMETHEUS",
  );
}

interface PromResult {
  metric: Record<string, string>;
  value: [number, string];
}

describe("Prometheus scrapes the fleet", () => {
  const db = testDatabase("prom");
  let tmp: TempDir;
  let cp: ControlPlaneProcess;
  const gateways: GatewayProcess[] = [];
  let prometheus: ChildProcess | undefined;
  let promUrl = "";
  let promLog = "";
  let apiKey = "";

  async function query(promql: string): Promise<PromResult[]> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { result: PromResult[] } };
    if (body.status !== "success") throw new Error(`${promql}: ${body.error ?? res.status}`);
    return body.data!.result;
  }

  /** Polls `promql` until `accept` holds (traffic keeps flowing meanwhile); returns the last answer. */
  async function eventuallyAnswers(promql: string, accept: (r: PromResult[]) => boolean): Promise<PromResult[]> {
    let last: PromResult[] = [];
    try {
      return await waitFor(
        async () => {
          last = await query(promql);
          return accept(last) ? last : undefined;
        },
        { timeoutMs: DEADLINE_MS, intervalMs: 500 },
      );
    } catch (err) {
      throw new Error(
        `${promql} never gave the expected answer (last: ${JSON.stringify(last)}; ${String(err)}); prometheus log:\n${tail(readFileSync(promLog, "utf8"))}`,
      );
    }
  }

  /** The shipped scrape config with loopback targets, 1 s intervals and the repository's rule file. */
  function writeScrapeConfig(path: string): void {
    const shipped = parse(readFileSync(join(repoRoot, "deploy/prometheus/prometheus.yml"), "utf8"));
    const [cpJob, gwJob] = shipped.scrape_configs;
    cpJob.static_configs = [{ targets: [`127.0.0.1:${cp.port}`] }];
    gwJob.static_configs = gateways.map((g, i) => ({
      targets: [`127.0.0.1:${g.statusPort}`],
      labels: { gateway: `gateway-${i + 1}` },
    }));
    const config = {
      ...shipped,
      global: { scrape_interval: "1s", evaluation_interval: "1s" },
      rule_files: [join(repoRoot, "deploy/prometheus/alerts.yaml")],
    };
    writeFileSync(path, JSON.stringify(config, null, 2));
  }

  let traffic: NodeJS.Timeout | undefined;

  beforeAll(async () => {
    const binary = prometheusBinary();
    tmp = await createTempDir("prometheus-");
    cp = await startControlPlane({
      masterKey: MASTER_KEY,
      dataDir: join(tmp.path, "cp"),
      ...(db ? { databaseUrl: db.url, databaseSchema: db.schema } : {}),
    });
    const token = await cp.admin.post("/internal/gateway-tokens", { name: "prometheus" });
    expect(token.status).toBe(201);
    for (const name of ["gw-a", "gw-b"]) {
      gateways.push(
        await startGateway({
          controlPlaneUrl: cp.grpcUrl,
          token: token.body.token,
          name,
          dataDir: join(tmp.path, name),
        }),
      );
    }
    await Promise.all(gateways.map((g) => g.waitForReady(30_000)));
    const user = await cp.admin.post("/internal/users", { external_id: "prometheus@example.com" });
    const key = await cp.admin.post("/internal/api-keys", { name: "prometheus", user_id: user.body.id });
    expect(key.status).toBe(201);
    apiKey = key.body.key;

    const configPath = join(tmp.path, "prometheus.yml");
    writeScrapeConfig(configPath);
    const port = await getFreePort();
    promUrl = `http://127.0.0.1:${port}`;
    promLog = join(tmp.path, "prometheus.log");
    const log = openSync(promLog, "a");
    prometheus = spawn(
      binary,
      [
        `--config.file=${configPath}`,
        `--storage.tsdb.path=${join(tmp.path, "tsdb")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ["ignore", log, log] },
    );
    closeSync(log);
    await waitFor(
      async () => {
        if (prometheus?.exitCode !== null)
          throw new Error(`prometheus exited:\n${tail(readFileSync(promLog, "utf8"))}`);
        return (await fetch(`${promUrl}/-/ready`).catch(() => undefined))?.ok ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    // Steady traffic through both gateways, so rates over any window are positive: one
    // good request each, and one with a bad key (an auth failure the dashboard counts).
    let turn = 0;
    traffic = setInterval(() => {
      const gw = gateways[turn++ % gateways.length]!;
      void chatStatus(gw, apiKey).catch(() => undefined);
      if (turn % 4 === 0) void chatStatus(gw, "llmp_not_a_real_key").catch(() => undefined);
    }, 100);
  });

  afterAll(async () => {
    if (traffic) clearInterval(traffic);
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus!.once("exit", resolve));
      prometheus.kill("SIGTERM");
      await exited;
    }
    await Promise.all(gateways.map((g) => g.stop()));
    await cp?.stop();
    await db?.drop();
    await tmp?.cleanup();
  });

  it("finds every target up, as the alert rules' job matchers see them", async () => {
    await eventuallyAnswers('count(up{job=~".*gateway.*"} == 1)', (r) => r[0]?.value[1] === "2");
    await eventuallyAnswers('count(up{job=~".*control-plane.*"} == 1)', (r) => r[0]?.value[1] === "1");
  });

  it("answers the fleet's request rate, with both gateways serving", async () => {
    const perGateway = await eventuallyAnswers(
      'sum by (gateway) (rate(tollgate_gateway_requests_total{status="200"}[10s])) > 0',
      (r) => r.length === 2,
    );
    expect(perGateway.map((r) => r.metric.gateway).sort()).toEqual(["gateway-1", "gateway-2"]);
    const fleet = await query("sum(rate(tollgate_gateway_requests_total[10s]))");
    expect(Number(fleet[0]?.value[1])).toBeGreaterThan(0);
  });

  it("shows each gateway's sync state: connected, lag present and caught up", async () => {
    await eventuallyAnswers("count(tollgate_gateway_sync_connected == 1)", (r) => r[0]?.value[1] === "2");
    const lag = await eventuallyAnswers("tollgate_gateway_sync_lag_revisions", (r) => r.length === 2);
    expect(lag.map((r) => r.metric.gateway).sort()).toEqual(["gateway-1", "gateway-2"]);
    await eventuallyAnswers("max(tollgate_gateway_sync_lag_revisions) == 0", (r) => r.length === 1);
  });

  it("names what runs: tollgate_build_info from both services", async () => {
    const info = await eventuallyAnswers("count by (service) (tollgate_build_info)", (r) => r.length === 2);
    expect(Object.fromEntries(info.map((r) => [r.metric.service, r.value[1]]))).toEqual({
      "control-plane": "1",
      gateway: "2",
    });
  });

  it("counts the bad keys as auth failures", async () => {
    await eventuallyAnswers("sum(increase(tollgate_gateway_auth_failures_total[30s])) > 0", (r) => r.length === 1);
  });

  it("evaluates every shipped alert rule without error, and none fires on a healthy fleet", async () => {
    const rules = await waitFor(
      async () => {
        const body = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as {
          data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> };
        };
        const all = body.data.groups.flatMap((g) => g.rules);
        return all.length > 0 && all.every((r) => r.health !== "unknown") ? all : undefined;
      },
      { timeoutMs: DEADLINE_MS, intervalMs: 500 },
    );
    expect(rules.filter((r) => r.health !== "ok").map((r) => `${r.name}: ${r.lastError}`)).toEqual([]);
    const firing = await query('ALERTS{alertstate="firing"}');
    expect(firing.map((r) => r.metric.alertname)).toEqual([]);
  });

  it("runs every query of the Grafana dashboard", async () => {
    const dashboard = JSON.parse(readFileSync(join(repoRoot, "deploy/grafana/tollgate-fleet.json"), "utf8"));
    const exprs: string[] = dashboard.panels.flatMap((p: { targets?: Array<{ expr?: string }> }) =>
      (p.targets ?? []).map((t) => t.expr).filter((e): e is string => typeof e === "string"),
    );
    expect(exprs.length).toBeGreaterThan(10);
    const failures: string[] = [];
    for (const expr of exprs) {
      const promql = expr.replaceAll("$__rate_interval", "1m").replaceAll("$instance", ".*");
      await query(promql).catch((err: Error) => failures.push(err.message));
    }
    expect(failures).toEqual([]);
  });
});
