import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { capturedLogger, eventually, FakeAnthropic, FakeControlPlane, makeKey, tempDir } from "@tollgate/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../test/test-config.js";
import { createGateway, type Gateway } from "../index.js";

const UPSTREAM_KEY = "sk-ant-upstream-metrics";
const PROMTOOL = "/usr/bin/promtool";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text scrape (label values here never hold quotes or commas). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample of `name` whose labels include `labels`. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

/**
 * prom-client's own default gauges that promtool flags: their names are prom-client's (and what
 * Node.js dashboards query), not Tollgate's to rename.
 */
const PROM_CLIENT_DEFAULTS = new Set([
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
]);

/** `promtool check metrics` over a scrape: its lint problems, prom-client's known defaults aside. */
function promtoolProblems(text: string): string[] {
  let out: string;
  try {
    out = execFileSync(PROMTOOL, ["check", "metrics"], { input: text, encoding: "utf8", stdio: "pipe" });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    out = `${e.stdout ?? ""}${e.stderr ?? ""}`;
  }
  return out.split("\n").filter((l) => l.trim() !== "" && !PROM_CLIENT_DEFAULTS.has(l.split(" ")[0]!));
}

describe("gateway metrics: tokens, cost, upstream latency, TTFT, in-flight, status classes, build info", () => {
  const dir = tempDir();
  const key = makeKey();
  const cp = new FakeControlPlane([key.upsert], 1);
  const up = new FakeAnthropic(UPSTREAM_KEY);
  let gw: Gateway;
  let base = "";

  beforeAll(async () => {
    await Promise.all([cp.start(), up.start()]);
    gw = createGateway(
      testConfig(dir.path, cp.url, cp.token, {
        logLevel: "silent",
        providers: [
          {
            name: "claude-team",
            kind: "anthropic",
            baseUrl: up.url,
            apiKey: UPSTREAM_KEY,
            models: [],
            modelPatterns: ["claude-*"],
            timeoutMs: 5_000,
          },
        ],
      }),
      { logger: capturedLogger().logger },
    );
    base = `http://127.0.0.1:${(await gw.start()).port}`;
    await eventually(() => (gw.context.syncState.ready ? true : undefined));
    gw.context.prices.upsert({
      provider: "anthropic",
      model: "claude-*",
      inputUsdPerMtok: 3,
      outputUsdPerMtok: 15,
      cacheReadUsdPerMtok: 0.3,
      cacheWriteUsdPerMtok: 3.75,
      source: "override",
    });
  });

  afterAll(async () => {
    await gw?.stop();
    await Promise.all([cp.stop(), up.stop()]);
    dir.remove();
  });

  const scrape = async () => parse(await gw.context.metrics.text());
  const message = (model: string, stream: boolean) =>
    fetch(`${base}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": key.secret, "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ model, max_tokens: 16, stream, messages: [{ role: "user", content: "Hi" }] }),
    });
  const loggedRows = async (n: number) =>
    eventually(async () => {
      await gw.context.logWriter.flush();
      const rows = gw.context.db.requestLog.list();
      return rows.length >= n ? rows : undefined;
    });

  it("counts a plain and a streamed request's tokens, cost, upstream time, TTFT and status class by provider", async () => {
    const plain = await message("claude-sonnet-4-5", false);
    expect(plain.status).toBe(200);
    await plain.text();
    const streamed = await message("claude-cached", true);
    expect(streamed.status).toBe(200);
    expect(await streamed.text()).toContain("message_stop");
    const rows = await loggedRows(2);

    const s = await eventually(async () => {
      const samples = await scrape();
      return value(samples, "tollgate_gateway_requests_in_flight") === 0 ? samples : undefined;
    });
    const p = { provider: "claude-team" };
    // The plain answer's 12 + 6 tokens, the stream's 25 + 15 and its prompt cache.
    expect(value(s, "tollgate_gateway_tokens_total", { ...p, type: "input" })).toBe(12 + 25);
    expect(value(s, "tollgate_gateway_tokens_total", { ...p, type: "output" })).toBe(6 + 15);
    expect(value(s, "tollgate_gateway_tokens_total", { ...p, type: "cache_read" })).toBe(100);
    expect(value(s, "tollgate_gateway_tokens_total", { ...p, type: "cache_write" })).toBe(20);
    const loggedCost = rows.reduce((sum, r) => sum + (r.costUsd ?? 0), 0);
    expect(loggedCost).toBeGreaterThan(0);
    expect(value(s, "tollgate_gateway_cost_usd_total", p)).toBeCloseTo(loggedCost, 12);
    expect(value(s, "tollgate_gateway_upstream_duration_seconds_count", p)).toBe(2);
    expect(value(s, "tollgate_gateway_upstream_duration_seconds_bucket", { ...p, le: "600" })).toBe(2);
    // Only the streamed request has a first token.
    expect(value(s, "tollgate_gateway_time_to_first_token_seconds_count", p)).toBe(1);
    expect(value(s, "tollgate_gateway_time_to_first_token_seconds_bucket", { ...p, le: "+Inf" })).toBe(1);
    expect(value(s, "tollgate_gateway_upstream_responses_total", { ...p, status_class: "2xx" })).toBe(2);
    expect(value(s, "tollgate_gateway_request_duration_seconds_bucket", { route: "messages", le: "600" })).toBe(2);
    // Never a key id or the client's model in any label.
    for (const sample of s)
      for (const v of Object.values(sample.labels)) {
        expect(v).not.toBe(key.upsert.id);
        expect(v).not.toMatch(/claude-sonnet|claude-cached/);
      }
  });

  it("counts an upstream error answer by its status class", async () => {
    const res = await message("claude-error-500", false);
    expect(res.status).toBeGreaterThanOrEqual(500);
    await res.text();
    const s = await eventually(async () => {
      const samples = await scrape();
      return value(samples, "tollgate_gateway_requests_in_flight") === 0 ? samples : undefined;
    });
    expect(
      value(s, "tollgate_gateway_upstream_responses_total", { provider: "claude-team", status_class: "5xx" }),
    ).toBe(1);
  });

  it("holds a request in flight while its stream is open", async () => {
    const res = await message("claude-held", true);
    const reader = res.body!.getReader();
    await reader.read();
    expect(value(await scrape(), "tollgate_gateway_requests_in_flight")).toBe(1);
    up.release();
    while (!(await reader.read()).done);
    await eventually(async () =>
      value(await scrape(), "tollgate_gateway_requests_in_flight") === 0 ? true : undefined,
    );
  });

  it("exports build info, and a scrape promtool accepts", async () => {
    const text = await gw.context.metrics.text();
    expect(value(parse(text), "tollgate_build_info", { service: "gateway", version: "0.1.0" })).toBe(1);
    // A healthy journal disk: the counter operators alert on is there, at zero.
    expect(value(parse(text), "tollgate_gateway_usage_journal_failures_total", {})).toBe(0);
    if (existsSync(PROMTOOL)) expect(promtoolProblems(text)).toEqual([]);
  });
});
