#!/usr/bin/env node
// Fleet quota overshoot benchmark (issue #5): how far past its limit a key gets
// when one gateway takes 80 % of the traffic, with 2 and 4 gateways.
//
// Processes (each its own event loop):
//   - fake upstream   node bench/quota-upstream.mjs: chat.completion with usage that
//                     follows the request (OpenAI's prompt overhead; completion =
//                     max_tokens, or 1536 tokens when the request sets no cap)
//   - control plane   node control-plane/dist/main.js (PGlite in a temp dir, or a
//                     fresh schema on DATABASE_URL, dropped at the end)
//   - gateways        node gateway/dist/main.js × max(N), OPENAI_BASE_URL = the fake upstream
//   - this process    the load driver (node:http, keep-alive agents)
//
// Parts:
//   budget  for each N: a key with budget_usd B and a price override, driven by C
//           concurrent workers (80 % of requests to gateway 1, the rest spread over
//           the others) until every gateway has refused; twice: "capped" requests
//           (max_tokens 64, the answer fills it) and "uncapped" ones (no max_tokens:
//           the gateway reserves 1024 output tokens, the answer has 1536).
//           spent = Σ usage of the 200s × price; overshoot = (spent − B) / B;
//           the control plane's spend_usd is read back once reports settle.
//   rpm     for each N, one whole UTC minute: keys with rpm_limit L (600 and 6000 at
//           once) offered `BENCH_QUOTA_OFFERED` × L requests over the minute, paced
//           in 100 ms ticks, same 80 % skew. Load starts 300 ms after the minute
//           starts and stops 1.5 s before it ends, so every admission falls in that
//           window. overshoot = (accepted − L) / L, under-use = (L − accepted) / L.
//
// Run: pnpm bench:quota (builds first). Knobs: see README.md or `parseEnv`.
// Measurements only: nothing asserts; the bounds are checked and reported.

import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import os from "node:os";
import { dirname, join, resolve as resolvePath } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  baseEnv,
  logText,
  machine,
  startChild as startLoggedChild,
  stopChild,
  waitForIpcPort,
} from "@tollgate/testkit";
import { createReporter, intList, loadavg, positive, revision, runBench } from "./lib/cli.mjs";
import {
  admin,
  startControlPlane as startServiceControlPlane,
  startReadyGateway,
  stopChildrenOnExit,
} from "./lib/services.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = process.env.BENCH_BUILD_ROOT ? resolvePath(process.env.BENCH_BUILD_ROOT) : join(HERE, "..");
const CONTROL_PLANE_MAIN = join(ROOT, "control-plane", "dist", "main.js");
const GATEWAY_MAIN = join(ROOT, "gateway", "dist", "main.js");

// ---------------------------------------------------------------- settings

function parseEnv(env) {
  const parts = (env.BENCH_QUOTA_PARTS ?? "budget,rpm")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const p of parts)
    if (p !== "budget" && p !== "rpm") throw new Error(`BENCH_QUOTA_PARTS: ${JSON.stringify(p)} is not budget or rpm`);
  const skew = positive("BENCH_QUOTA_SKEW", env.BENCH_QUOTA_SKEW, 0.8);
  if (skew >= 1) throw new Error("BENCH_QUOTA_SKEW must be below 1");
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    parts,
    gateways: intList("BENCH_QUOTA_GATEWAYS", env.BENCH_QUOTA_GATEWAYS, [2, 4]),
    rpmLimits: intList("BENCH_QUOTA_RPM", env.BENCH_QUOTA_RPM, [600, 6000]),
    // Offered requests per minute, as a multiple of the limit.
    offered: positive("BENCH_QUOTA_OFFERED", env.BENCH_QUOTA_OFFERED, 2),
    // Share of the requests sent to gateway 1; the rest is spread evenly over the others.
    skew,
    // Most requests in flight per rpm key (more offered is counted as dropped, not sent).
    rpmMaxInFlight: Math.floor(positive("BENCH_QUOTA_RPM_MAX_IN_FLIGHT", env.BENCH_QUOTA_RPM_MAX_IN_FLIGHT, 256)),
    budgetUsd: positive("BENCH_QUOTA_BUDGET_USD", env.BENCH_QUOTA_BUDGET_USD, 50),
    // Concurrent workers driving a budget key (each one request at a time).
    connections: Math.floor(positive("BENCH_QUOTA_CONNECTIONS", env.BENCH_QUOTA_CONNECTIONS, 32)),
    // Uncapped budget runs per fleet size (each about 1 s of load; the figure varies run to run).
    uncappedRuns: Math.floor(positive("BENCH_QUOTA_UNCAPPED_RUNS", env.BENCH_QUOTA_UNCAPPED_RUNS, 3)),
    // USD per million tokens for the price override of gpt-4o-mini.
    inputPrice: positive("BENCH_QUOTA_INPUT_USD_PER_MTOK", env.BENCH_QUOTA_INPUT_USD_PER_MTOK, 100),
    outputPrice: positive("BENCH_QUOTA_OUTPUT_USD_PER_MTOK", env.BENCH_QUOTA_OUTPUT_USD_PER_MTOK, 400),
    cappedMaxTokens: Math.floor(positive("BENCH_QUOTA_MAX_TOKENS", env.BENCH_QUOTA_MAX_TOKENS, 64)),
    uncappedCompletion: Math.floor(
      positive("BENCH_QUOTA_UNCAPPED_COMPLETION", env.BENCH_QUOTA_UNCAPPED_COMPLETION, 1536),
    ),
    resultsDir: env.BENCH_RESULTS_DIR || join(HERE, "results"),
    logLevel: env.BENCH_LOG_LEVEL || "info",
    keepTmp: env.BENCH_KEEP_TMP === "1",
  };
}

const settings = parseEnv(process.env);
const MODEL = "gpt-4o-mini";
/** The gateway's reservation for a request without max_tokens (gateway/src/quota/enforce.ts). */
const DEFAULT_RESERVED_OUTPUT_TOKENS = 1024;
/** The quota manager's default prefetch (gateway/src/quota/quota-manager.ts). */
const PREFETCH_FRACTION = 0.02;

// ---------------------------------------------------------------- output

const { progress, say } = createReporter({ plainEveryMs: 5_000 });

const round1 = (x) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);
const round6 = (x) => (x === null || x === undefined ? null : Math.round(x * 1e6) / 1e6);
const pct = (x) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(2)} %`);
const usd = (micro) => `$${(micro / 1e6).toFixed(4)}`;

// ---------------------------------------------------------------- child processes and cleanup

let tmpDir;
const children = [];
let cleaning;
let dropSchema = null;

/** Spawns a Node script, its stdout and stderr to `<tmp>/<name>.log`. */
function startChild(name, script, env, { ipc = false } = {}) {
  const entry = startLoggedChild(name, script, { logDir: tmpDir, env, ipc });
  children.push(entry);
  return entry;
}

function cleanup() {
  cleaning ??= (async () => {
    // Gateways first (they give their leases back to the control plane), then the rest.
    const gateways = children.filter((c) => c.name.startsWith("gateway-"));
    await Promise.all(gateways.map((c) => stopChild(c, 5_000)));
    await Promise.all(children.map((c) => stopChild(c, 5_000)));
    if (dropSchema) await dropSchema().catch((err) => say(`could not drop the bench schema: ${err.message}`));
    if (tmpDir) {
      if (settings.keepTmp) say(`keeping ${tmpDir} (BENCH_KEEP_TMP=1)`);
      else rmSync(tmpDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    }
  })();
  return cleaning;
}

stopChildrenOnExit(children, cleanup, say);

// ---------------------------------------------------------------- services

async function startUpstream() {
  const entry = startChild(
    "quota-upstream",
    join(HERE, "quota-upstream.mjs"),
    {
      ...baseEnv(),
      HOST: "127.0.0.1",
      PORT: "0",
      BUILD_ROOT: ROOT,
      UNCAPPED_COMPLETION_TOKENS: String(settings.uncappedCompletion),
    },
    { ipc: true },
  );
  const port = await waitForIpcPort(entry, 20_000);
  return { entry, url: `http://127.0.0.1:${port}` };
}

const startControlPlane = (schema) =>
  startServiceControlPlane({
    start: startChild,
    main: CONTROL_PLANE_MAIN,
    dataDir: join(tmpDir, "control-plane"),
    logLevel: settings.logLevel,
    env: settings.databaseUrl ? { DATABASE_URL: settings.databaseUrl, DATABASE_SCHEMA: schema } : {},
  });

async function startGateway(cp, gatewayToken, upstreamUrl, index) {
  const name = `gateway-${index + 1}`;
  const dataDir = join(tmpDir, name);
  const { entry, port, statusUrl } = await startReadyGateway({
    start: startChild,
    main: GATEWAY_MAIN,
    name,
    gatewayName: `bench-${index + 1}`,
    dataDir,
    cp,
    gatewayToken,
    upstreamUrl,
    logLevel: settings.logLevel,
    // Every bench client is 127.0.0.1; refusals must never turn into IP blocks.
    env: { BRUTE_FORCE_MAX_FAILED_ATTEMPTS: "1000000" },
  });
  return { name, entry, dataDir, port, statusUrl, agent: new http.Agent({ keepAlive: true, maxSockets: 128 }) };
}

/** Log lines of a gateway that say it lost the quota service (it then enforces its even share alone). */
function degradedLines(gw) {
  return logText(gw.entry)
    .split("\n")
    .filter((l) => l.includes("quota service unreachable")).length;
}

// ---------------------------------------------------------------- the client side

/**
 * One chat completion through a gateway. Resolves { status, json, t0, t1 } (ms,
 * performance.now()); a network error or a 15 s timeout resolves status 0.
 */
function chat(gw, apiKey, body, parse) {
  const payload = Buffer.from(JSON.stringify(body));
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: gw.port,
        method: "POST",
        path: "/v1/chat/completions",
        agent: gw.agent,
        headers: {
          authorization: `Bearer ${apiKey}`,
          "content-type": "application/json",
          "content-length": payload.length,
        },
        timeout: 15_000,
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          let json = null;
          if (parse || res.statusCode !== 200) {
            try {
              json = JSON.parse(Buffer.concat(chunks).toString("utf8"));
            } catch {
              // not JSON
            }
          }
          resolve({ status: res.statusCode, json, t0, t1: performance.now() });
        });
        res.on("error", (err) => resolve({ status: 0, json: { error: err.message }, t0, t1: performance.now() }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) => resolve({ status: 0, json: { error: err.message }, t0, t1: performance.now() }));
    req.end(payload);
  });
}

/**
 * The gateway a request goes to: a share `skew` to gateway 0, the rest spread
 * evenly over the others. A low-discrepancy sequence (golden ratio) mixes them
 * evenly over time, deterministically.
 */
function targetOf(i, n, skew) {
  if (n === 1) return 0;
  const u = (i * 0.6180339887498949) % 1;
  if (u < skew) return 0;
  return 1 + Math.min(n - 2, Math.floor(((u - skew) / (1 - skew)) * (n - 1)));
}

const prompt = (i) => `Summarize ticket #${i} in one short sentence for the weekly report.`;

// ---------------------------------------------------------------- part 1: budget

let estimate; // the gateway's own estimatePromptTokens (gateway/dist/quota/estimate.js)

/** micro-USD, the way the gateway prices (pricing/price-index.ts): reserve rounds up, actual rounds. */
const reserveMicro = (promptTokens, outTokens) =>
  Math.ceil(promptTokens * settings.inputPrice + outTokens * settings.outputPrice - 1e-9);
const actualMicro = (u) =>
  Math.round((u.prompt_tokens ?? 0) * settings.inputPrice + (u.completion_tokens ?? 0) * settings.outputPrice);

async function budgetRun(ctx, n, variant, run = 1) {
  const label = `budget N=${n} ${variant}${run > 1 ? ` #${run}` : ""}`;
  const degradedBefore = ctx.degraded();
  const fleet = ctx.gateways.slice(0, n);
  const budgetUsd = settings.budgetUsd;
  const key = await admin(ctx.cp, "POST", "/internal/api-keys?wait_for_gateways=10s", {
    name: `quota-bench-budget-n${n}-${variant}-${run}`,
    user_id: ctx.userId,
    budget_usd: budgetUsd,
  });
  const bodyOf = (i) => ({
    model: MODEL,
    messages: [{ role: "user", content: prompt(i) }],
    ...(variant === "capped" ? { max_tokens: settings.cappedMaxTokens } : {}),
  });
  const perGw = fleet.map(() => ({ sent: 0, ok: 0, refused: 0, other: 0, spentMicro: 0, refusedAt: null }));
  const other = {};
  let spentMicro = 0;
  let ok = 0;
  let next = 0;
  let inFlight = 0;
  let peakInFlight = 0;
  let maxExcess = -Infinity;
  let maxExcessTokens = -Infinity;
  let sumExcessPositive = 0;
  let maxReserved = 0;
  let stop = false;
  const t0 = performance.now();
  const budgetMicro = Math.round(budgetUsd * 1e6);
  const record = (g, i, r) => {
    const s = perGw[g];
    if (r.status === 200 && r.json?.usage) {
      const body = bodyOf(i);
      const est = estimate(body);
      const reservedOut = variant === "capped" ? settings.cappedMaxTokens : DEFAULT_RESERVED_OUTPUT_TOKENS;
      const reserved = reserveMicro(est, reservedOut);
      const actual = actualMicro(r.json.usage);
      s.ok++;
      ok++;
      s.spentMicro += actual;
      spentMicro += actual;
      maxReserved = Math.max(maxReserved, reserved);
      if (actual - reserved > maxExcess) {
        maxExcess = actual - reserved;
        maxExcessTokens = r.json.usage.total_tokens - (est + reservedOut);
      }
      sumExcessPositive += Math.max(0, actual - reserved);
    } else if (
      r.status === 429 &&
      (r.json?.error?.code === "insufficient_quota" || r.json?.error?.code === "budget_exceeded")
    ) {
      s.refused++;
      s.refusedAt ??= round1(r.t1 - t0);
    } else {
      s.other++;
      const k = `${r.status} ${r.json?.error?.code ?? r.json?.error ?? ""}`.trim();
      other[k] = (other[k] ?? 0) + 1;
    }
  };
  const timer = setInterval(() => {
    progress(
      `[${label}] ${((performance.now() - t0) / 1000).toFixed(1)} s  spent ${usd(spentMicro)} of $${budgetUsd} (${pct(spentMicro / budgetMicro)})  ` +
        `200s ${ok}  in flight ${inFlight}  refused per gateway ${perGw.map((s) => s.refused).join("/")}`,
    );
  }, 250);
  const deadline = t0 + 120_000;
  const worker = async () => {
    while (!stop) {
      if (performance.now() > deadline) {
        stop = true;
        ctx.errors.push(`${label}: not every gateway refused within 120 s`);
        break;
      }
      const i = next++;
      const g = targetOf(i, n, settings.skew);
      perGw[g].sent++;
      inFlight++;
      peakInFlight = Math.max(peakInFlight, inFlight);
      const r = await chat(fleet[g], key.key, bodyOf(i), true);
      inFlight--;
      record(g, i, r);
      // Near the limit, uncapped requests are throttled (429 rate_limit_exceeded, Retry-After: 1): back off a little, as a client would.
      if (r.status === 429 && r.json?.error?.code === "rate_limit_exceeded")
        await new Promise((res) => setTimeout(res, 100));
      if (perGw.every((s) => s.refused > 0)) stop = true;
    }
  };
  await Promise.all(Array.from({ length: settings.connections }, worker));
  const loadS = (performance.now() - t0) / 1000;
  // Afterwards: anything left anywhere in the fleet is still served. Probe each gateway a few times.
  await sleep(1_500);
  const probes = [];
  for (let g = 0; g < n; g++) {
    for (let p = 0; p < 3; p++) {
      const i = next++;
      const r = await chat(fleet[g], key.key, bodyOf(i), true);
      record(g, i, r);
      probes.push({ gateway: g + 1, status: r.status });
    }
  }
  clearInterval(timer);
  const overshoot = (spentMicro - budgetMicro) / budgetMicro;
  const result = {
    n,
    variant,
    run,
    key_id: key.id,
    budget_usd: budgetUsd,
    request:
      variant === "capped"
        ? { max_tokens: settings.cappedMaxTokens }
        : {
            max_tokens: null,
            reserved_output_tokens: DEFAULT_RESERVED_OUTPUT_TOKENS,
            completion_tokens: settings.uncappedCompletion,
          },
    load_s: round1(loadS),
    connections: settings.connections,
    peak_in_flight: peakInFlight,
    requests: next,
    accepted: ok,
    spent_usd: round6(spentMicro / 1e6),
    overshoot: round6(overshoot),
    under_use: round6(Math.max(0, -overshoot)),
    max_reserved_usd: round6(maxReserved / 1e6),
    max_excess_usd: round6(maxExcess / 1e6),
    max_excess_tokens: maxExcessTokens,
    sum_positive_excess_usd: round6(sumExcessPositive / 1e6),
    // The stated bound, and the one that holds with concurrent requests.
    stated_bound_usd: round6((n * Math.max(0, maxExcess)) / 1e6),
    concurrency_bound_usd: round6((peakInFlight * Math.max(0, maxExcess)) / 1e6),
    within_stated_bound: spentMicro - budgetMicro <= n * Math.max(0, maxExcess),
    within_concurrency_bound: spentMicro - budgetMicro <= peakInFlight * Math.max(0, maxExcess),
    within_2pct: Math.abs(overshoot) <= 0.02,
    per_gateway: perGw.map((s, g) => ({
      gateway: g + 1,
      sent: s.sent,
      accepted: s.ok,
      refused: s.refused,
      other: s.other,
      spent_usd: round6(s.spentMicro / 1e6),
      first_refusal_s: s.refusedAt === null ? null : round1(s.refusedAt / 1000),
    })),
    other_statuses: other,
    probes_after_stop: probes,
    // "quota service unreachable" lines the gateways logged during this run (0: every grant came from the control plane).
    degraded_log_lines_during: ctx.degraded() - degradedBefore,
    cp: null,
  };
  say(
    `[${label}] spent ${usd(spentMicro)} of $${budgetUsd}: overshoot ${pct(overshoot)} in ${round1(loadS)} s, ${ok} × 200, peak ${peakInFlight} in flight, ` +
      `max excess/request ${usd(Math.max(0, maxExcess))}; probes after stop: ${probes.map((p) => p.status).join(" ")}`,
  );
  return result;
}

/** Waits until the control plane's spend_usd and requests of every key stop moving (reports every 1 s). */
async function controlPlaneView(ctx, runs) {
  const deadline = performance.now() + 30_000;
  let last = null;
  let stableSince = performance.now();
  for (;;) {
    const views = [];
    for (const r of runs) {
      const k = await admin(ctx.cp, "GET", `/internal/api-keys/${r.key_id}`);
      views.push({ spend_usd: k.spend_usd, requests: k.requests });
    }
    const text = JSON.stringify(views);
    if (text !== last) {
      last = text;
      stableSince = performance.now();
    } else if (performance.now() - stableSince >= 3_000) {
      runs.forEach((r, i) => {
        r.cp = {
          spend_usd: round6(views[i].spend_usd),
          requests: views[i].requests,
          overshoot: round6((views[i].spend_usd - r.budget_usd) / r.budget_usd),
          matches_responses: Math.abs(views[i].spend_usd - r.spent_usd) < 1e-6,
        };
      });
      return;
    }
    if (performance.now() > deadline) {
      ctx.errors.push("control-plane spend did not settle within 30 s");
      return;
    }
    await sleep(500);
  }
}

// ---------------------------------------------------------------- part 2: requests per minute

async function rpmWindow(ctx, n) {
  const fleet = ctx.gateways.slice(0, n);
  const keys = [];
  for (const limit of settings.rpmLimits) {
    const key = await admin(ctx.cp, "POST", "/internal/api-keys?wait_for_gateways=10s", {
      name: `quota-bench-rpm-n${n}-${limit}`,
      user_id: ctx.userId,
      rpm_limit: limit,
    });
    keys.push({
      limit,
      key,
      rate: (settings.offered * limit) / 60, // per second
      sent: 0,
      dropped: 0,
      inFlight: 0,
      peakInFlight: 0,
      perGw: fleet.map(() => ({ sent: 0, ok: 0, refused: 0, other: 0 })),
      other: {},
      ok: 0,
      refused: 0,
      firstRefusalMs: null,
      lastOkMs: null,
      okPerSecond: new Array(60).fill(0),
    });
  }
  // The next whole UTC minute (or this one, if it started less than 300 ms ago).
  const now = Date.now();
  const minuteStart = now % 60_000 < 300 ? now - (now % 60_000) : now - (now % 60_000) + 60_000;
  const startAt = minuteStart + 300;
  const stopAt = minuteStart + 58_500;
  const label = `rpm N=${n}`;
  let degradedBefore;
  const waitMs = startAt - Date.now();
  say(
    `[${label}] waiting ${(waitMs / 1000).toFixed(1)} s for the minute ${new Date(minuteStart).toISOString().slice(11, 16)} UTC…`,
  );
  while (Date.now() < startAt) {
    progress(`[${label}] window starts in ${((startAt - Date.now()) / 1000).toFixed(1)} s`);
    await sleep(Math.min(250, Math.max(1, startAt - Date.now())));
  }
  degradedBefore = ctx.degraded();
  const pending = new Set();
  const send = (k) => {
    if (k.inFlight >= settings.rpmMaxInFlight) {
      k.dropped++;
      return;
    }
    const i = k.sent++;
    const g = targetOf(i, n, settings.skew);
    k.perGw[g].sent++;
    k.inFlight++;
    k.peakInFlight = Math.max(k.peakInFlight, k.inFlight);
    const p = chat(fleet[g], k.key.key, { model: MODEL, messages: [{ role: "user", content: prompt(i) }] }, false).then(
      (r) => {
        k.inFlight--;
        pending.delete(p);
        const at = Date.now() - minuteStart;
        const s = k.perGw[g];
        if (r.status === 200) {
          s.ok++;
          k.ok++;
          k.lastOkMs = Math.max(k.lastOkMs ?? 0, at);
          k.okPerSecond[Math.min(59, Math.floor(at / 1000))]++;
        } else if (r.status === 429 && r.json?.error?.code === "rate_limit_exceeded") {
          s.refused++;
          k.refused++;
          k.firstRefusalMs ??= at;
        } else {
          s.other++;
          const key = `${r.status} ${r.json?.error?.code ?? r.json?.error ?? ""}`.trim();
          k.other[key] = (k.other[key] ?? 0) + 1;
        }
        k.lastDoneMs = Math.max(k.lastDoneMs ?? 0, at);
      },
    );
    pending.add(p);
  };
  const t0 = Date.now();
  let lastProgress = 0;
  for (;;) {
    const t = Date.now();
    if (t >= stopAt) break;
    const elapsedS = (t - t0) / 1000;
    for (const k of keys) {
      const due = Math.floor(k.rate * elapsedS);
      while (k.sent + k.dropped < due) send(k);
    }
    if (t - lastProgress >= 250) {
      lastProgress = t;
      progress(
        `[${label}] ${((t - minuteStart) / 1000).toFixed(1)} s of the minute  ` +
          keys
            .map((k) => `L=${k.limit}: 200 ${k.ok}/${k.limit} 429 ${k.refused} in flight ${k.inFlight}`)
            .join("  |  "),
      );
    }
    await sleep(100);
  }
  await Promise.all([...pending]);
  const endedAt = Date.now();
  if (endedAt >= minuteStart + 60_000)
    ctx.errors.push(`${label}: the last answer came ${endedAt - minuteStart - 60_000} ms into the next minute`);
  const window = `m:${Math.floor(minuteStart / 60_000)}`;
  const degradedDuring = ctx.degraded() - degradedBefore;
  const out = keys.map((k) => {
    const overshoot = (k.ok - k.limit) / k.limit;
    const prefetch = Math.floor(k.limit * PREFETCH_FRACTION);
    return {
      n,
      limit: k.limit,
      window,
      minute_utc: new Date(minuteStart).toISOString(),
      key_id: k.key.id,
      offered_per_minute: Math.round(k.rate * 60),
      sent: k.sent,
      dropped_over_in_flight_cap: k.dropped,
      peak_in_flight: k.peakInFlight,
      accepted: k.ok,
      refused: k.refused,
      other_statuses: k.other,
      overshoot: round6(overshoot),
      under_use: round6(Math.max(0, -overshoot)),
      // Stated bounds: accepted ≤ L; L − accepted ≤ N × prefetch (2 % of L).
      under_use_bound: n * prefetch,
      within_limit: k.ok <= k.limit,
      within_under_use_bound: k.limit - k.ok <= n * prefetch,
      within_2pct: Math.abs(overshoot) <= 0.02,
      first_refusal_s: k.firstRefusalMs === null ? null : round1(k.firstRefusalMs / 1000),
      last_200_s: k.lastOkMs === null ? null : round1(k.lastOkMs / 1000),
      last_answer_s: k.lastDoneMs === undefined ? null : round1(k.lastDoneMs / 1000),
      accepted_per_second: k.okPerSecond,
      per_gateway: k.perGw.map((s, g) => ({
        gateway: g + 1,
        sent: s.sent,
        accepted: s.ok,
        refused: s.refused,
        other: s.other,
      })),
      degraded_log_lines_during: degradedDuring,
    };
  });
  for (const r of out) {
    say(
      `[${label}] L=${r.limit}: ${r.accepted} accepted of ${r.sent} sent (overshoot ${pct(r.overshoot)}, under-use ${pct(r.under_use)}); ` +
        `first 429 at ${r.first_refusal_s} s, last 200 at ${r.last_200_s} s; per gateway ${r.per_gateway.map((g) => g.accepted).join("/")}`,
    );
  }
  return out;
}

// ---------------------------------------------------------------- report

function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(" | ")} |`;
  return [line(header), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)].join("\n");
}

function report(results) {
  const out = [];
  if (results.rpm.length) {
    out.push(
      table(
        [
          "N",
          "L (rpm)",
          "offered",
          "accepted",
          "per gateway",
          "overshoot",
          "under-use",
          "bound: ≤ L, under-use ≤ N×prefetch",
          "first 429",
          "within 2 %",
          "degraded",
        ],
        results.rpm.map((r) => [
          r.n,
          r.limit,
          r.sent,
          r.accepted,
          r.per_gateway.map((g) => g.accepted).join(" / "),
          pct(r.overshoot),
          pct(r.under_use),
          `${r.within_limit ? "≤ L" : "OVER L"}, ${r.limit - r.accepted} ≤ ${r.under_use_bound}: ${r.within_under_use_bound ? "yes" : "NO"}`,
          `${r.first_refusal_s} s`,
          r.within_2pct ? "yes" : "NO",
          r.degraded_log_lines_during,
        ]),
      ),
    );
  }
  if (results.budget.length) {
    out.push("");
    out.push(
      table(
        [
          "N",
          "requests",
          "B",
          "spent (200s)",
          "CP spend_usd",
          "overshoot",
          "max excess/req",
          "stated N×max",
          "peak in flight",
          "in-flight×max",
          "within 2 %",
          "degraded",
        ],
        results.budget.map((r) => [
          r.n,
          r.run > 1 ? `${r.variant} #${r.run}` : r.variant,
          `$${r.budget_usd}`,
          `$${r.spent_usd.toFixed(4)} (${r.accepted} × 200)`,
          r.cp ? `$${r.cp.spend_usd.toFixed(4)}${r.cp.matches_responses ? " (=)" : " (≠)"}` : "–",
          pct(r.overshoot),
          `$${Math.max(0, r.max_excess_usd).toFixed(4)}`,
          `$${r.stated_bound_usd.toFixed(4)} ${r.within_stated_bound ? "holds" : "EXCEEDED"}`,
          r.peak_in_flight,
          `$${r.concurrency_bound_usd.toFixed(4)} ${r.within_concurrency_bound ? "holds" : "EXCEEDED"}`,
          r.within_2pct ? "yes" : "NO",
          r.degraded_log_lines_during,
        ]),
      ),
    );
  }
  return out.join("\n");
}

// ---------------------------------------------------------------- main

async function main() {
  const startedAt = new Date();
  tmpDir = mkdtempSync(join(os.tmpdir(), "tollgate-quota-bench-"));
  const schema = settings.databaseUrl ? `bench_${randomBytes(5).toString("hex")}` : null;
  const results = {
    date: startedAt.toISOString(),
    database: settings.databaseUrl ? "postgres" : "pglite",
    machine: { ...machine(), loadavg_1m: { start: loadavg(), end: null } },
    source: revision(ROOT, ["gateway", "control-plane", "shared"]),
    settings: {
      ...settings,
      databaseUrl: settings.databaseUrl ? "(set)" : undefined,
      resultsDir: undefined,
      model: MODEL,
    },
    budget: [],
    rpm: [],
    degraded_log_lines: null,
    errors: [],
  };
  const maxN = Math.max(...settings.gateways);
  say(
    `tollgate quota overshoot bench: ${results.database}, ${maxN} gateways, ${results.machine.nproc} CPU ${results.machine.cpu}, Node ${process.version}, load ${results.machine.loadavg_1m.start}`,
  );

  ({ estimatePromptTokens: estimate } = await import(
    pathToFileURL(join(ROOT, "gateway", "dist", "quota", "estimate.js")).href
  ));
  const { warmTokenizer } = await import(pathToFileURL(join(ROOT, "gateway", "dist", "quota", "estimate.js")).href);
  await warmTokenizer();

  const upstream = await startUpstream();
  const cp = await startControlPlane(schema);
  if (schema) {
    dropSchema = async () => {
      const pg = createRequire(join(ROOT, "control-plane", "package.json"))("pg");
      const client = new pg.Client({ connectionString: settings.databaseUrl });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    };
  }
  const token = (await admin(cp, "POST", "/internal/gateway-tokens", { name: "quota-bench" })).token;
  const gateways = await Promise.all(Array.from({ length: maxN }, (_, i) => startGateway(cp, token, upstream.url, i)));
  say(`control plane and ${maxN} gateways ready`);
  const price = await admin(cp, "PUT", `/internal/model-prices/openai/${MODEL}`, {
    input_usd_per_mtok: settings.inputPrice,
    output_usd_per_mtok: settings.outputPrice,
  });
  results.price = price;
  const userId = (
    await admin(cp, "POST", "/internal/users", {
      external_id: `quota-bench-${randomBytes(4).toString("hex")}@example.com`,
    })
  ).id;
  const ctx = {
    cp,
    gateways,
    userId,
    errors: results.errors,
    degraded: () => gateways.reduce((a, gw) => a + degradedLines(gw), 0),
  };

  // Warm-up, and the gateways' tokenizer (loaded on the first token-limited request; heuristic until then):
  // a key with a huge token limit, a few requests through every gateway, then check a 200.
  const warm = await admin(cp, "POST", "/internal/api-keys?wait_for_gateways=10s", {
    name: "quota-bench-warmup",
    user_id: userId,
    tpm_limit: 1_000_000_000,
  });
  for (let round = 0; round < 3; round++) {
    const rs = await Promise.all(
      gateways.map((gw, g) =>
        chat(gw, warm.key, { model: MODEL, messages: [{ role: "user", content: prompt(g) }], max_tokens: 8 }, true),
      ),
    );
    for (const r of rs)
      if (r.status !== 200) throw new Error(`warm-up request answered ${r.status}: ${JSON.stringify(r.json)}`);
    await sleep(700);
  }

  try {
    if (settings.parts.includes("budget")) {
      for (const n of settings.gateways) {
        results.budget.push(await budgetRun(ctx, n, "capped"));
        for (let run = 1; run <= settings.uncappedRuns; run++)
          results.budget.push(await budgetRun(ctx, n, "uncapped", run));
      }
    }
    if (settings.parts.includes("rpm")) {
      for (const n of settings.gateways) results.rpm.push(...(await rpmWindow(ctx, n)));
    }
    if (results.budget.length) {
      say("waiting for the control plane's spend to settle…");
      await controlPlaneView(ctx, results.budget);
    }
  } finally {
    results.degraded_log_lines = Object.fromEntries(gateways.map((gw) => [gw.name, degradedLines(gw)]));
  }
  results.machine.loadavg_1m.end = loadavg();
  results.finished_at = new Date().toISOString();
  results.total_s = round1((Date.now() - startedAt.getTime()) / 1000);

  say("");
  console.log(
    `\nTollgate fleet quota overshoot (${results.database}, skew ${settings.skew * 100} % to gateway 1, load ${results.machine.loadavg_1m.start} → ${results.machine.loadavg_1m.end})\n`,
  );
  console.log(report(results));
  const degraded = Object.values(results.degraded_log_lines).reduce((a, b) => a + b, 0);
  console.log(
    `\n"quota service unreachable" log lines on the gateways: ${degraded}${degraded ? ` ${JSON.stringify(results.degraded_log_lines)}` : ""}`,
  );
  for (const e of results.errors) console.log(`error: ${e}`);
  mkdirSync(settings.resultsDir, { recursive: true });
  const file = join(
    settings.resultsDir,
    `quota-overshoot-${startedAt
      .toISOString()
      .replace(/:/g, "-")
      .replace(/\.\d+Z$/, "Z")}-${results.database}.json`,
  );
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\ntotal ${results.total_s} s; results: ${file}`);
}

await runBench("quota overshoot bench", main, cleanup, say);
