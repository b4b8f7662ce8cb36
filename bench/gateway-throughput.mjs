#!/usr/bin/env node
// Gateway throughput benchmark: what a real Tollgate gateway costs on the request
// path, against the physical limit (the upstream called directly) and a real peer
// (@portkey-ai/gateway), all on this machine.
//
// Processes (each its own event loop):
//   - fake upstream   node bench/fake-upstream.mjs (plain node:http, fixed OpenAI
//                     JSON / SSE answers with usage, keep-alive)
//   - control plane   node control-plane/dist/main.js (PGlite in a temp dir)
//   - gateway         node gateway/dist/main.js, fed a gateway token and one API key
//                     (with scopes: provider, models, IP allowlist, metadata) by the
//                     control plane; auth, scopes, audit, request log and metrics on;
//                     OPENAI_BASE_URL = the fake upstream
//   - Portkey         node <@portkey-ai/gateway>/build/start-server.js --headless,
//                     x-portkey-provider: openai + x-portkey-custom-host = the fake upstream
//   - this process    the load driver: autocannon, used programmatically
//
// For each connection count × mode (plain, stream), rounds of A B C:
//   A direct (client → fake upstream), B tollgate, C portkey,
// each a warm-up run (discarded) then a measured run. Latencies are taken from
// autocannon's per-response times (float ms; its own histogram keeps whole ms
// only). The gateway's (and Portkey's, and the upstream's) RSS is read from
// /proc/<pid>/status every 100 ms, their CPU time from /proc/<pid>/stat.
//
// Run: pnpm bench (builds first). Knobs: see README.md or `parseEnv`.
// Timings only: nothing here asserts. Every child is stopped and the temp dir
// removed at the end, on errors and on Ctrl-C.

import autocannon from "autocannon";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import os from "node:os";
import { dirname, join, resolve as resolvePath } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import {
  baseEnv,
  logTail,
  machine,
  startChild as startLoggedChild,
  stopChild,
  waitForIpcPort,
} from "@tollgate/testkit";
import { choiceList, createReporter, intList, loadavg, positive, revision, runBench } from "./lib/cli.mjs";
import {
  admin,
  startControlPlane as startServiceControlPlane,
  startReadyGateway,
  stopChildrenOnExit,
  UPSTREAM_KEY,
} from "./lib/services.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
// BENCH_BUILD_ROOT: another built checkout whose control-plane/dist and gateway/dist to run
// (e.g. a `git archive` export of a commit, installed and built); default this repository.
const ROOT = process.env.BENCH_BUILD_ROOT ? resolvePath(process.env.BENCH_BUILD_ROOT) : join(HERE, "..");
const CONTROL_PLANE_MAIN = join(ROOT, "control-plane", "dist", "main.js");
const GATEWAY_MAIN = join(ROOT, "gateway", "dist", "main.js");
const requireHere = createRequire(import.meta.url);

// ---------------------------------------------------------------- settings

const ALL_TARGETS = ["direct", "node-proxy", "tollgate", "portkey"];
// "baseline": a second gateway built from BENCH_BASELINE_ROOT (e.g. the commit before a change),
// fed the same key by the same control plane, so before/after run interleaved in one bench.
const KNOWN_TARGETS = [...ALL_TARGETS, "baseline"];

function parseEnv(env) {
  return {
    durationS: positive("BENCH_DURATION_S", env.BENCH_DURATION_S, 5),
    warmupS: env.BENCH_WARMUP_S === "0" ? 0 : positive("BENCH_WARMUP_S", env.BENCH_WARMUP_S, 1),
    // Once per target and mode before anything is measured, at the largest connection count (JIT, pools).
    initialWarmupS:
      env.BENCH_INITIAL_WARMUP_S === "0" ? 0 : positive("BENCH_INITIAL_WARMUP_S", env.BENCH_INITIAL_WARMUP_S, 2),
    rounds: Math.floor(positive("BENCH_ROUNDS", env.BENCH_ROUNDS, 2)),
    connections: intList("BENCH_CONNECTIONS", env.BENCH_CONNECTIONS, [1, 32]),
    modes: choiceList("BENCH_MODES", env.BENCH_MODES, ["plain", "stream"], ["plain", "stream"]),
    // Run order within a round; "node-proxy" is the floor of any Node proxy hop (node-proxy.mjs).
    targets: choiceList("BENCH_TARGETS", env.BENCH_TARGETS, KNOWN_TARGETS, ALL_TARGETS),
    baselineRoot: env.BENCH_BASELINE_ROOT ? resolvePath(env.BENCH_BASELINE_ROOT) : null,
    // Limits the bench's key counts against: "tokens" (default: the team's tpm and daily token
    // limits, and the key's rpm; the tokenizer loads for the estimates) or "rpm" (the key's rpm
    // only: leases on, no token estimate, no tokenizer). All far above what the bench sends.
    quota: choiceList("BENCH_QUOTA", env.BENCH_QUOTA, ["tokens", "rpm"], ["tokens"])[0],
    resultsDir: env.BENCH_RESULTS_DIR || join(HERE, "results"),
    // LOG_LEVEL of the control plane and gateway (their logs go to files in the temp dir).
    logLevel: env.BENCH_LOG_LEVEL || "info",
    keepTmp: env.BENCH_KEEP_TMP === "1",
    // "0": run Portkey exactly as installed (its streaming then fails, see portkey/preload.mjs).
    portkeyShim: env.BENCH_PORTKEY_SHIM !== "0",
    // A directory: the gateway runs with --cpu-prof and writes its profile there on exit.
    gatewayCpuProfDir: env.BENCH_GATEWAY_CPU_PROF ? resolvePath(env.BENCH_GATEWAY_CPU_PROF) : null,
    // Extra node flags for the gateway child only, e.g. "--max-semi-space-size=2".
    gatewayNodeFlags: (env.BENCH_GATEWAY_NODE_FLAGS ?? "").split(/\s+/).filter(Boolean),
    // Extra environment for the measured gateway only, e.g. "MALLOC_ARENA_MAX=2".
    gatewayEnv: Object.fromEntries(
      (env.BENCH_GATEWAY_ENV ?? "")
        .split(/\s+/)
        .filter(Boolean)
        .map((kv) => {
          const eq = kv.indexOf("=");
          if (eq <= 0) throw new Error(`BENCH_GATEWAY_ENV: ${JSON.stringify(kv)} is not NAME=value`);
          return [kv.slice(0, eq), kv.slice(eq + 1)];
        }),
    ),
    baselineNodeFlags: (env.BENCH_BASELINE_NODE_FLAGS ?? "").split(/\s+/).filter(Boolean),
    rssIntervalMs: 100,
  };
}

const settings = parseEnv(process.env);
const MB = 1024 * 1024;
const MODEL = "gpt-4o-mini";
const BODIES = {
  plain: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Say hello." }], max_tokens: 16 }),
  stream: JSON.stringify({
    model: MODEL,
    messages: [{ role: "user", content: "Say hello." }],
    max_tokens: 16,
    stream: true,
    stream_options: { include_usage: true },
  }),
};

// ---------------------------------------------------------------- small helpers

const { progress, say } = createReporter();

const round1 = (x) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);
const round2 = (x) => (x === null || x === undefined ? null : Math.round(x * 100) / 100);
const round3 = (x) => (x === null || x === undefined ? null : Math.round(x * 1000) / 1000);
const fmtInt = (x) => (x === null || x === undefined ? "–" : Math.round(x).toLocaleString("en-US"));

/** The commit checked out in a built tree, if it is a git checkout. */
function revisionOf(root) {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return process.env.BENCH_BASELINE_COMMIT ?? null;
  }
}

function clockTicks() {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
}
const CLK_TCK = clockTicks();

/** VmRSS of a process in bytes, or null when it is gone. */
function rssOf(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Busy and total CPU seconds of the whole machine (all cores), from /proc/stat. */
function machineCpu() {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n", 1)[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …: "busy" is what processes run
    // (user, nice, system); interrupt work (mostly the loopback traffic's own
    // softirq, charged to no process) and steal are kept apart.
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return {
      busy: (f[0] + f[1] + f[2]) / CLK_TCK,
      irq: ((f[5] ?? 0) + (f[6] ?? 0)) / CLK_TCK,
      steal: (f[7] ?? 0) / CLK_TCK,
      total: total / CLK_TCK,
    };
  } catch {
    return null;
  }
}

/** User + system CPU seconds a process has used, or null when it is gone. */
function cpuOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start at ") ".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime (fields 14, 15)
  } catch {
    return null;
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

/** A growable Float64Array of latencies (ms). */
class Samples {
  constructor() {
    this.data = new Float64Array(1 << 16);
    this.length = 0;
  }
  push(v) {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  static merge(list) {
    const out = new Samples();
    out.data = new Float64Array(
      Math.max(
        1,
        list.reduce((n, s) => n + s.length, 0),
      ),
    );
    for (const s of list) {
      out.data.set(s.data.subarray(0, s.length), out.length);
      out.length += s.length;
    }
    return out;
  }
  stats() {
    const sorted = this.data.slice(0, this.length).sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    return {
      samples: sorted.length,
      p50_ms: round3(percentile(sorted, 50)),
      p90_ms: round3(percentile(sorted, 90)),
      p99_ms: round3(percentile(sorted, 99)),
      mean_ms: sorted.length ? round3(sum / sorted.length) : null,
      max_ms: sorted.length ? round3(sorted[sorted.length - 1]) : null,
    };
  }
}

// ---------------------------------------------------------------- child processes and cleanup

let tmpDir;
const children = [];
let currentLoad;
let cleaning;

/** Spawns a Node script, its stdout and stderr to `<tmp>/<name>.log` (never through this loop). */
function startChild(name, script, args, env, { ipc = false, nodeArgs = [] } = {}) {
  const entry = startLoggedChild(name, script, { logDir: tmpDir, env, args, nodeArgs, ipc });
  children.push(entry);
  return entry;
}

/** Waits for a JSON log line matching `pred` in the child's log file. */

function cleanup() {
  cleaning ??= (async () => {
    try {
      currentLoad?.stop();
    } catch {
      // already stopped
    }
    sampler.stop();
    await Promise.all(children.map((c) => stopChild(c, 5_000)));
    if (tmpDir) {
      if (settings.keepTmp) say(`keeping ${tmpDir} (BENCH_KEEP_TMP=1)`);
      else rmSync(tmpDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    }
  })();
  return cleaning;
}

stopChildrenOnExit(children, cleanup, say);

// ---------------------------------------------------------------- RSS / CPU sampling

class Sampler {
  constructor(intervalMs) {
    this.intervalMs = intervalMs;
    this.pids = new Map(); // name → pid
    this.peak = new Map(); // name → bytes, whole run
    this.window = null; // name → { peak, samples }
    this.timer = undefined;
  }
  track(name, pid) {
    this.pids.set(name, pid);
  }
  start() {
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }
  stop() {
    clearInterval(this.timer);
  }
  sample() {
    for (const [name, pid] of this.pids) {
      const rss = rssOf(pid);
      if (rss === null) continue;
      if (rss > (this.peak.get(name) ?? 0)) this.peak.set(name, rss);
      if (this.window) {
        const w = (this.window[name] ??= { peak: 0, samples: 0 });
        w.samples++;
        if (rss > w.peak) w.peak = rss;
      }
    }
  }
  /** Starts a measurement window; returns a function that ends it with { name: { peak_mb, samples, cpu_s } }. */
  open() {
    this.window = {};
    const cpu0 = new Map([...this.pids].map(([n, pid]) => [n, cpuOf(pid)]));
    const m0 = machineCpu();
    const self0 = cpuOf(process.pid);
    this.sample();
    return () => {
      this.sample();
      const out = { machine_cores: os.cpus().length };
      const m1 = machineCpu();
      const self1 = cpuOf(process.pid);
      for (const [name, pid] of this.pids) {
        const w = this.window[name];
        const c1 = cpuOf(pid);
        const c0 = cpu0.get(name);
        out[name] = {
          peak_rss_mb: w ? round1(w.peak / MB) : null,
          rss_samples: w?.samples ?? 0,
          cpu_s: c0 === null || c1 === null ? null : round2(c1 - c0),
        };
      }
      this.window = null;
      // Everything else on the machine during the window: busy CPU minus the bench's processes.
      if (m0 && m1) {
        const wall = (m1.total - m0.total) / out.machine_cores;
        const ours =
          Object.values(out).reduce((n, p) => n + (typeof p === "object" && p?.cpu_s ? p.cpu_s : 0), 0) +
          (self1 - self0);
        out.machine = {
          busy_pct_of_all_cores: Math.round(((m1.busy + m1.irq - m0.busy - m0.irq) / (m1.total - m0.total)) * 100),
          // Other processes, as a share of one core (user + system time not ours).
          others_cpu_pct: Math.max(0, Math.round(((m1.busy - m0.busy - ours) / wall) * 100)),
          irq_cpu_pct: Math.round(((m1.irq - m0.irq) / wall) * 100),
          steal_cpu_pct: Math.round(((m1.steal - m0.steal) / wall) * 100),
        };
      }
      delete out.machine_cores;
      return out;
    };
  }
}
const sampler = new Sampler(settings.rssIntervalMs);

// ---------------------------------------------------------------- services

/** Forks a bench helper that reports { port } over IPC. */
async function startIpcChild(name, script, env) {
  const entry = startChild(name, script, [], env, { ipc: true });
  const port = await waitForIpcPort(entry, 15_000);
  return { entry, url: `http://127.0.0.1:${port}` };
}

const startUpstream = () =>
  startIpcChild("fake-upstream", join(HERE, "fake-upstream.mjs"), { ...baseEnv(), HOST: "127.0.0.1", PORT: "0" });
const startNodeProxy = (upstreamUrl) =>
  startIpcChild("node-proxy", join(HERE, "node-proxy.mjs"), { ...baseEnv(), UPSTREAM: upstreamUrl, BUILD_ROOT: ROOT });

const startControlPlane = () =>
  startServiceControlPlane({
    start: (name, script, env) => startChild(name, script, [], env),
    main: CONTROL_PLANE_MAIN,
    dataDir: join(tmpDir, "control-plane"),
    logLevel: settings.logLevel,
  });

/** A team, a user and one API key with every scope the gateway checks per request. */
async function seed(cp) {
  const teamLimits =
    settings.quota === "tokens" ? { tpm_limit: 1_000_000_000, daily_token_limit: 1_000_000_000_000 } : {};
  const team = await admin(cp, "POST", "/internal/teams", { name: "bench", ...teamLimits });
  const user = await admin(cp, "POST", "/internal/users", { external_id: "bench@example.com", team_id: team.id });
  const key = await admin(cp, "POST", "/internal/api-keys", {
    name: "bench",
    user_id: user.id,
    allowed_providers: ["openai"],
    allowed_models: ["gpt-4o*", "gpt-4.1-mini"],
    ip_allowlist: ["127.0.0.1", "::1", "10.0.0.0/8"],
    metadata: { purpose: "gateway-throughput bench", team: "bench" },
    // So the fleet quota (lease) path runs on every request.
    rpm_limit: 100_000_000,
  });
  const token = await admin(cp, "POST", "/internal/gateway-tokens", { name: "bench" });
  const baselineToken = settings.targets.includes("baseline")
    ? await admin(cp, "POST", "/internal/gateway-tokens", { name: "bench-baseline" })
    : null;
  return {
    apiKey: key.key,
    keyId: key.id,
    gatewayToken: token.token,
    baselineGatewayToken: baselineToken?.token ?? null,
  };
}

async function startGateway(cp, gatewayToken, upstreamUrl, { name = "gateway", main = GATEWAY_MAIN } = {}) {
  const dataDir = join(tmpDir, name);
  // The flags and the profile are for the gateway measured; the baseline has flags of its own.
  const nodeArgs =
    name === "gateway"
      ? [
          ...settings.gatewayNodeFlags,
          ...(settings.gatewayCpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${settings.gatewayCpuProfDir}`] : []),
        ]
      : settings.baselineNodeFlags;
  const { entry, port, statusUrl } = await startReadyGateway({
    start: (childName, script, env) => startChild(childName, script, [], env, { nodeArgs }),
    main,
    name,
    label: "gateway",
    gatewayName: name === "gateway" ? "bench" : `bench-${name}`,
    dataDir,
    cp,
    gatewayToken,
    upstreamUrl,
    logLevel: settings.logLevel,
    env: name === "gateway" ? settings.gatewayEnv : {},
  });
  return { entry, dataDir, url: `http://127.0.0.1:${port}`, statusUrl };
}

function portkeyInfo() {
  const pkgPath = requireHere.resolve("@portkey-ai/gateway/package.json");
  const pkg = JSON.parse(readFileSync(pkgPath, "utf8"));
  return { version: pkg.version, main: join(dirname(pkgPath), "build", "start-server.js") };
}

async function startPortkey() {
  const info = portkeyInfo();
  const port = await freePort();
  // NODE_ENV=production and --headless: no log UI, no /public routes. The preload works
  // around Portkey's streaming failure under Node (see portkey/preload.mjs).
  const nodeArgs = settings.portkeyShim ? ["--import", join(HERE, "portkey", "preload.mjs")] : [];
  const entry = startChild(
    "portkey",
    info.main,
    [`--port=${port}`, "--headless"],
    { ...baseEnv(), NODE_ENV: "production" },
    { nodeArgs },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + 60_000;
  for (;;) {
    const res = await fetch(`${url}/`).catch(() => null);
    if (res) {
      await res.arrayBuffer();
      if (res.status === 200) break;
    }
    if (entry.exit) throw new Error(`Portkey exited (${JSON.stringify(entry.exit)}); log tail:\n${logTail(entry)}`);
    if (performance.now() > deadline)
      throw new Error(`Portkey did not answer GET / within 60 s; log tail:\n${logTail(entry)}`);
    await sleep(100);
  }
  return { entry, url, version: info.version };
}

// ---------------------------------------------------------------- load

function targetRequest(target, endpoints, apiKey) {
  const json = { "content-type": "application/json" };
  switch (target) {
    case "direct":
      return {
        url: `${endpoints.upstream}/v1/chat/completions`,
        headers: { ...json, authorization: `Bearer ${UPSTREAM_KEY}` },
      };
    case "node-proxy":
      return {
        url: `${endpoints["node-proxy"]}/v1/chat/completions`,
        headers: { ...json, authorization: `Bearer ${UPSTREAM_KEY}` },
      };
    case "tollgate":
    case "baseline":
      return {
        url: `${endpoints[target]}/v1/chat/completions`,
        headers: { ...json, authorization: `Bearer ${apiKey}` },
      };
    case "portkey":
      return {
        url: `${endpoints.portkey}/v1/chat/completions`,
        headers: {
          ...json,
          authorization: `Bearer ${UPSTREAM_KEY}`,
          "x-portkey-provider": "openai",
          "x-portkey-custom-host": `${endpoints.upstream}/v1`,
        },
      };
    default:
      throw new Error(target);
  }
}

/** One request through `target`: status, and whether the answer carries the upstream's usage. */
async function sanity(target, mode, req) {
  const res = await fetch(req.url, { method: "POST", headers: req.headers, body: BODIES[mode] });
  const text = await res.text();
  const ok =
    res.status === 200 &&
    (mode === "plain"
      ? JSON.parse(text)?.usage?.total_tokens === 21
      : text.includes('"total_tokens":21') && text.includes("data: [DONE]"));
  return {
    target,
    mode,
    status: res.status,
    ok,
    content_type: res.headers.get("content-type"),
    bytes: Buffer.byteLength(text),
    sample: ok ? undefined : text.slice(0, 400),
  };
}

/** One autocannon run; latencies of 2xx answers recorded in float ms. */
function load(req, mode, connections, durationS, label) {
  return new Promise((resolve, reject) => {
    const samples = new Samples();
    let non2xx = 0;
    const started = performance.now();
    const cpu0 = process.cpuUsage();
    const instance = autocannon(
      {
        url: req.url,
        method: "POST",
        headers: req.headers,
        body: BODIES[mode],
        connections,
        pipelining: 1,
        duration: durationS,
        timeout: 10,
      },
      (err, result) => {
        clearInterval(ticker);
        currentLoad = undefined;
        if (err) return reject(err);
        const elapsedS = (performance.now() - started) / 1000;
        const cpu = process.cpuUsage(cpu0);
        // This process (autocannon + sampling) as a share of one core.
        const driverCpuPct = Math.round(((cpu.user + cpu.system) / 1e6 / elapsedS) * 100);
        resolve({ samples, result, elapsedS, non2xx, driverCpuPct });
      },
    );
    currentLoad = instance;
    instance.on("response", (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) samples.push(responseTime);
      else non2xx++;
    });
    const ticker = setInterval(() => {
      const t = (performance.now() - started) / 1000;
      const rss = rssOf(pidOfTarget.get(label.target) ?? 0);
      progress(
        `${label.prefix} ${t.toFixed(1)}/${durationS} s  ${fmtInt(samples.length)} ok  ${fmtInt(samples.length / Math.max(t, 0.001))} req/s` +
          (label.target !== "direct" && rss !== null ? `  RSS ${round1(rss / MB)} MB` : ""),
      );
    }, 250);
  });
}

const pidOfTarget = new Map();

// ---------------------------------------------------------------- report

function pad(s, n, right = false) {
  s = String(s);
  return right ? s.padStart(n) : s.padEnd(n);
}

function printTable(cells) {
  const header = [
    pad("mode", 7),
    pad("conns", 5, true),
    pad("target", 10),
    pad("req/s", 8, true),
    pad("per round", 17, true),
    pad("p50 ms", 7, true),
    pad("p90 ms", 7, true),
    pad("p99 ms", 7, true),
    pad("err", 4, true),
    pad("non2xx", 6, true),
    pad("peak RSS MB", 11, true),
    pad("CPU µs/req", 10, true),
    pad("CPU % proc; upstream; driver; others; cp", 40, true),
  ].join("  ");
  console.log(header);
  console.log("-".repeat(header.length));
  for (const cell of cells) {
    for (const t of settings.targets) {
      const r = cell.targets[t];
      if (!r) continue;
      if (r.skipped) {
        console.log(
          [pad(cell.mode, 7), pad(cell.connections, 5, true), pad(t, 10), `skipped: ${r.skipped}`].join("  "),
        );
        continue;
      }
      const own = t === "direct" ? "upstream" : t;
      console.log(
        [
          pad(cell.mode, 7),
          pad(cell.connections, 5, true),
          pad(t, 10),
          pad(fmtInt(r.rps), 8, true),
          pad(r.rounds.map((x) => fmtInt(x.rps)).join(" / "), 17, true),
          pad(r.latency.p50_ms?.toFixed(3) ?? "–", 7, true),
          pad(r.latency.p90_ms?.toFixed(3) ?? "–", 7, true),
          pad(r.latency.p99_ms?.toFixed(3) ?? "–", 7, true),
          pad(r.errors + r.timeouts, 4, true),
          pad(r.non2xx, 6, true),
          pad(t === "direct" ? "–" : (r.peak_rss_mb?.[own] ?? "–"), 11, true),
          pad(r.cpu_us_per_req?.[own] ?? "–", 10, true),
          pad(
            `${t === "direct" ? "–" : r.process_cpu_pct[own]}; ${r.process_cpu_pct.upstream}; ${r.driver_cpu_pct}; ${r.others_cpu_pct}; ${r.process_cpu_pct["control-plane"] ?? "–"}`,
            40,
            true,
          ),
        ].join("  "),
      );
    }
    const c = cell.comparison;
    const parts = [];
    if (c.tollgate_over_direct !== null) parts.push(`tollgate/direct ${c.tollgate_over_direct.toFixed(2)}`);
    if (c.tollgate_over_portkey !== null) parts.push(`tollgate/portkey ${c.tollgate_over_portkey.toFixed(2)}`);
    if (c.tollgate_added_p50_ms !== null)
      parts.push(`added p50 ${c.tollgate_added_p50_ms.toFixed(3)} ms, p99 ${c.tollgate_added_p99_ms.toFixed(3)} ms`);
    if (c.node_proxy_added_p50_ms !== null)
      parts.push(
        `node-proxy/direct ${c.node_proxy_over_direct.toFixed(2)}, adds p50 ${c.node_proxy_added_p50_ms.toFixed(3)}, p99 ${c.node_proxy_added_p99_ms.toFixed(3)}`,
      );
    if (c.tollgate_over_baseline !== null)
      parts.push(
        `tollgate/baseline ${c.tollgate_over_baseline.toFixed(2)}, baseline adds p50 ${c.baseline_added_p50_ms?.toFixed(3)}, p99 ${c.baseline_added_p99_ms?.toFixed(3)}`,
      );
    if (c.portkey_added_p50_ms !== null)
      parts.push(`portkey adds p50 ${c.portkey_added_p50_ms.toFixed(3)}, p99 ${c.portkey_added_p99_ms.toFixed(3)}`);
    if (parts.length) console.log(`${" ".repeat(8)}→ ${parts.join("; ")}`);
  }
}

const TARGETS = {
  added_p50_ms: 0.3,
  added_p99_ms: 1,
  throughput_vs_direct: 0.5,
  throughput_vs_portkey: 2,
  rss_mb: 100,
};

function verdicts(cells, gatewayPeakMb) {
  const out = [];
  for (const cell of cells) {
    const c = cell.comparison;
    const where = `${cell.mode}, ${cell.connections} conn`;
    if (c.tollgate_added_p50_ms !== null) {
      out.push({
        target: `added latency p50 ≤ ${TARGETS.added_p50_ms} ms`,
        where,
        value: c.tollgate_added_p50_ms,
        met: c.tollgate_added_p50_ms <= TARGETS.added_p50_ms,
      });
      out.push({
        target: `added latency p99 ≤ ${TARGETS.added_p99_ms} ms`,
        where,
        value: c.tollgate_added_p99_ms,
        met: c.tollgate_added_p99_ms <= TARGETS.added_p99_ms,
      });
    }
    if (c.tollgate_over_direct !== null) {
      out.push({
        target: `throughput ≥ ${TARGETS.throughput_vs_direct * 100} % of direct`,
        where,
        value: c.tollgate_over_direct,
        met: c.tollgate_over_direct >= TARGETS.throughput_vs_direct,
      });
    }
    if (c.tollgate_over_portkey !== null) {
      out.push({
        target: `throughput ≥ ${TARGETS.throughput_vs_portkey}× Portkey`,
        where,
        value: c.tollgate_over_portkey,
        met: c.tollgate_over_portkey >= TARGETS.throughput_vs_portkey,
      });
    }
  }
  if (gatewayPeakMb !== null) {
    out.push({
      target: `gateway RSS < ${TARGETS.rss_mb} MB under load`,
      where: "peak over all Tollgate runs",
      value: gatewayPeakMb,
      met: gatewayPeakMb < TARGETS.rss_mb,
    });
  }
  return out;
}

// ---------------------------------------------------------------- after the runs: metrics and request log

function metricValue(text, name, labels) {
  let total = 0;
  let found = false;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(" ") + 1));
    found = true;
  }
  return found ? total : null;
}

/** Opens the stopped gateway's SQLite file read-only and counts what it logged. */
function requestLogCounts(dataDir) {
  const file = join(dataDir, "gateway.db");
  if (!existsSync(file)) return { error: "gateway.db missing" };
  try {
    const requireGateway = createRequire(join(ROOT, "gateway", "package.json"));
    const Database = requireGateway("better-sqlite3");
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      const byStatus = db
        .prepare("SELECT status, count(*) AS n FROM request_log GROUP BY status ORDER BY status")
        .all();
      const audit = db.prepare("SELECT count(*) AS n FROM audit_log").get().n;
      const withUsage = db.prepare("SELECT count(*) AS n FROM request_log WHERE total_tokens IS NOT NULL").get().n;
      return {
        request_log_by_status: Object.fromEntries(byStatus.map((r) => [r.status, r.n])),
        request_log_with_usage: withUsage,
        audit_log_rows: audit,
        gateway_db_mb: round1(
          ["", "-wal"].reduce((n, s) => n + (existsSync(file + s) ? statSync(file + s).size : 0), 0) / MB,
        ),
      };
    } finally {
      db.close();
    }
  } catch (err) {
    return { error: err.message };
  }
}

// ---------------------------------------------------------------- main

async function main() {
  for (const p of [CONTROL_PLANE_MAIN, GATEWAY_MAIN]) {
    if (!existsSync(p))
      throw new Error(`${p} is missing: run \`pnpm build\` (tsc -b) first; \`pnpm bench\` builds before running.`);
  }
  const startedAt = new Date();
  const results = {
    bench: "gateway-throughput",
    started_at: startedAt.toISOString(),
    machine: { ...machine(), loadavg_1m: { start: loadavg(), end: null } },
    revision: revision(ROOT, ["gateway", "shared"]),
    settings: { ...settings, resultsDir: undefined },
    versions: {
      node: process.version,
      autocannon: JSON.parse(readFileSync(requireHere.resolve("autocannon/package.json"), "utf8")).version,
    },
    bodies: BODIES,
    targets_definition: TARGETS,
  };
  const m = results.machine;
  say(
    `tollgate gateway throughput bench: ${m.nproc} CPU ${m.cpu}, Node ${process.version}, load ${m.loadavg_1m.start}`,
  );
  const perRun = settings.warmupS + settings.durationS;
  const runs = settings.connections.length * settings.modes.length * settings.rounds * settings.targets.length;
  const loadS = runs * (perRun + 0.3) + settings.modes.length * settings.targets.length * settings.initialWarmupS;
  say(
    `${runs} measured runs of ${settings.durationS} s (+${settings.warmupS} s warm-up each, after a ${settings.initialWarmupS} s warm-up per target): about ${Math.ceil(loadS / 60)} min of load`,
  );

  tmpDir = mkdtempSync(join(os.tmpdir(), "tollgate-bench-gw-"));
  const t0 = performance.now();
  const upstream = await startUpstream();
  sampler.track("upstream", upstream.entry.child.pid);
  pidOfTarget.set("direct", upstream.entry.child.pid);
  const endpoints = { upstream: upstream.url };

  if (settings.targets.includes("node-proxy")) {
    const np = await startNodeProxy(upstream.url);
    endpoints["node-proxy"] = np.url;
    sampler.track("node-proxy", np.entry.child.pid);
    pidOfTarget.set("node-proxy", np.entry.child.pid);
  }

  let apiKey = null;
  let gw = null;
  let cp = null;
  if (settings.targets.includes("tollgate") || settings.targets.includes("baseline")) {
    cp = await startControlPlane();
    // Not a target, but it shares the cores: its CPU is reported beside the gateways'.
    sampler.track("control-plane", cp.entry.child.pid);
    const seeded = await seed(cp);
    apiKey = seeded.apiKey;
    results.quota = {
      mode: settings.quota,
      key: { rpm_limit: 100_000_000 },
      team: settings.quota === "tokens" ? { tpm_limit: 1_000_000_000, daily_token_limit: 1_000_000_000_000 } : {},
    };
    if (settings.targets.includes("tollgate")) {
      gw = await startGateway(cp, seeded.gatewayToken, upstream.url);
      endpoints.tollgate = gw.url;
      sampler.track("tollgate", gw.entry.child.pid);
      pidOfTarget.set("tollgate", gw.entry.child.pid);
      results.tollgate = {
        key_scopes: ["allowed_providers", "allowed_models", "ip_allowlist", "metadata"],
        log_level: settings.logLevel,
      };
    }
    if (settings.targets.includes("baseline")) {
      if (!settings.baselineRoot)
        throw new Error("BENCH_TARGETS has baseline: set BENCH_BASELINE_ROOT to a built checkout");
      const main = join(settings.baselineRoot, "gateway", "dist", "main.js");
      if (!existsSync(main)) throw new Error(`${main} is missing: build BENCH_BASELINE_ROOT first`);
      const base = await startGateway(cp, seeded.baselineGatewayToken, upstream.url, { name: "baseline", main });
      endpoints.baseline = base.url;
      sampler.track("baseline", base.entry.child.pid);
      pidOfTarget.set("baseline", base.entry.child.pid);
      results.baseline = {
        build_root: settings.baselineRoot,
        commit: revisionOf(settings.baselineRoot),
        node_flags: settings.baselineNodeFlags,
      };
    }
  }

  // Why Portkey is left out of a mode, if it is (it must start, and answer that mode correctly).
  const portkeySkip = { plain: null, stream: null };
  const skipped = (target, mode) => (target === "portkey" ? portkeySkip[mode] : null);
  if (settings.targets.includes("portkey")) {
    try {
      const pk = await startPortkey();
      endpoints.portkey = pk.url;
      sampler.track("portkey", pk.entry.child.pid);
      pidOfTarget.set("portkey", pk.entry.child.pid);
      results.versions.portkey = pk.version;
    } catch (err) {
      portkeySkip.plain = portkeySkip.stream = `Portkey could not start: ${err.message.split("\n")[0]}`;
      say(portkeySkip.plain);
    }
  }
  results.setup_s = round1((performance.now() - t0) / 1000);
  sampler.start();

  // Every path answers correctly before anything is timed.
  const checks = [];
  for (const target of settings.targets) {
    for (const mode of settings.modes) {
      if (skipped(target, mode)) continue;
      const check = await sanity(target, mode, targetRequest(target, endpoints, apiKey));
      checks.push(check);
      if (!check.ok) {
        if (target === "portkey") {
          portkeySkip[mode] = `Portkey answered ${check.status} to a ${mode} request: ${check.sample}`;
          say(portkeySkip[mode]);
        } else {
          throw new Error(`${target} ${mode} sanity request failed: ${check.status} ${check.sample}`);
        }
      }
    }
  }
  results.sanity = checks;
  const tollgateOk = { measured: 0, warmup: 0 };
  results.portkey = {
    shim: settings.portkeyShim ? "portkey/preload.mjs (@hono/node-server overrideGlobalObjects: false)" : null,
    skipped: portkeySkip,
  };
  results.idle_rss_mb = Object.fromEntries([...sampler.pids].map(([n, pid]) => [n, round1((rssOf(pid) ?? 0) / MB)]));
  say(`setup ${results.setup_s} s; idle RSS ${JSON.stringify(results.idle_rss_mb)} MB`);

  if (settings.initialWarmupS > 0) {
    const c = Math.max(...settings.connections);
    for (const mode of settings.modes) {
      for (const target of settings.targets.filter((t) => !skipped(t, mode))) {
        const w = await load(targetRequest(target, endpoints, apiKey), mode, c, settings.initialWarmupS, {
          prefix: `initial warm-up ${mode} c=${c} ${target}`,
          target,
        });
        if (target === "tollgate") tollgateOk.warmup += w.samples.length;
      }
    }
  }

  const cells = [];
  let runIndex = 0;
  const activeCount = (mode) => settings.targets.filter((t) => !skipped(t, mode)).length;
  const totalRuns =
    settings.connections.length * settings.rounds * settings.modes.reduce((n, mode) => n + activeCount(mode), 0);
  for (const connections of settings.connections) {
    for (const mode of settings.modes) {
      const cell = { mode, connections, targets: {} };
      const activeTargets = settings.targets.filter((t) => !skipped(t, mode));
      const perTarget = Object.fromEntries(activeTargets.map((t) => [t, []]));
      for (let round = 1; round <= settings.rounds; round++) {
        for (const target of activeTargets) {
          runIndex++;
          const req = targetRequest(target, endpoints, apiKey);
          const prefix = `[${String(runIndex).padStart(String(totalRuns).length)}/${totalRuns}] ${mode} c=${connections} ${target} r${round}`;
          if (settings.warmupS > 0) {
            const w = await load(req, mode, connections, settings.warmupS, { prefix: `${prefix} warm-up`, target });
            if (target === "tollgate") tollgateOk.warmup += w.samples.length;
          }
          const close = sampler.open();
          const loadBefore = loadavg();
          const run = await load(req, mode, connections, settings.durationS, { prefix, target });
          const procs = close();
          if (target === "tollgate") tollgateOk.measured += run.samples.length;
          const lat = run.samples.stats();
          const r = run.result;
          const row = {
            round,
            rps: round1(run.samples.length / run.elapsedS),
            ok: run.samples.length,
            elapsed_s: round2(run.elapsedS),
            ...lat,
            errors: r.errors,
            timeouts: r.timeouts,
            non2xx: run.non2xx,
            status_codes: r.statusCodeStats,
            autocannon: {
              requests_total: r.requests.total,
              latency_p50_ms_int: r.latency.p50,
              latency_p99_ms_int: r.latency.p99,
            },
            processes: procs,
            loadavg_1m: loadBefore,
            driver_cpu_pct: run.driverCpuPct,
            samples: run.samples,
          };
          perTarget[target].push(row);
          say(
            `${prefix}: ${fmtInt(row.rps)} req/s, p50 ${lat.p50_ms} ms, p99 ${lat.p99_ms} ms, err ${r.errors + r.timeouts}, non2xx ${run.non2xx}, driver CPU ${run.driverCpuPct} %` +
              (target !== "direct" && procs[target] ? `, peak RSS ${procs[target].peak_rss_mb} MB` : ""),
          );
          await sleep(250);
        }
      }
      for (const target of settings.targets) {
        if (skipped(target, mode)) {
          cell.targets.portkey = { skipped: skipped(target, mode) };
          continue;
        }
        const rows = perTarget[target];
        const merged = Samples.merge(rows.map((x) => x.samples));
        const totalS = rows.reduce((n, x) => n + x.elapsed_s, 0);
        const involved = target === "direct" ? ["upstream"] : [target, "upstream"];
        if ((target === "tollgate" || target === "baseline") && rows.some((x) => x.processes["control-plane"]))
          involved.push("control-plane");
        const ok = rows.reduce((n, x) => n + x.ok, 0);
        cell.targets[target] = {
          rps: round1(ok / totalS),
          ok,
          latency: merged.stats(),
          errors: rows.reduce((n, x) => n + x.errors, 0),
          timeouts: rows.reduce((n, x) => n + x.timeouts, 0),
          non2xx: rows.reduce((n, x) => n + x.non2xx, 0),
          peak_rss_mb: Object.fromEntries(
            involved.map((p) => [p, Math.max(...rows.map((x) => x.processes[p]?.peak_rss_mb ?? 0))]),
          ),
          cpu_us_per_req: Object.fromEntries(
            involved.map((p) => {
              const cpu = rows.reduce((n, x) => n + (x.processes[p]?.cpu_s ?? 0), 0);
              return [p, ok ? Math.round((cpu / ok) * 1e6) : null];
            }),
          ),
          driver_cpu_pct: Math.max(...rows.map((x) => x.driver_cpu_pct)),
          others_cpu_pct: Math.max(...rows.map((x) => x.processes.machine?.others_cpu_pct ?? 0)),
          process_cpu_pct: Object.fromEntries(
            involved.map((p) => [
              p,
              Math.round((rows.reduce((n, x) => n + (x.processes[p]?.cpu_s ?? 0), 0) / totalS) * 100),
            ]),
          ),
          rounds: rows.map(({ samples, ...rest }) => rest),
        };
      }
      const T = cell.targets;
      const has = (t) => T[t] && !T[t].skipped && T[t].ok > 0;
      cell.comparison = {
        tollgate_over_direct: has("tollgate") && has("direct") ? round3(T.tollgate.rps / T.direct.rps) : null,
        tollgate_over_portkey: has("tollgate") && has("portkey") ? round3(T.tollgate.rps / T.portkey.rps) : null,
        portkey_over_direct: has("portkey") && has("direct") ? round3(T.portkey.rps / T.direct.rps) : null,
        node_proxy_over_direct: has("node-proxy") && has("direct") ? round3(T["node-proxy"].rps / T.direct.rps) : null,
        tollgate_over_node_proxy:
          has("tollgate") && has("node-proxy") ? round3(T.tollgate.rps / T["node-proxy"].rps) : null,
        tollgate_over_baseline: has("tollgate") && has("baseline") ? round3(T.tollgate.rps / T.baseline.rps) : null,
        baseline_over_direct: has("baseline") && has("direct") ? round3(T.baseline.rps / T.direct.rps) : null,
        baseline_added_p50_ms:
          has("baseline") && has("direct") ? round3(T.baseline.latency.p50_ms - T.direct.latency.p50_ms) : null,
        baseline_added_p99_ms:
          has("baseline") && has("direct") ? round3(T.baseline.latency.p99_ms - T.direct.latency.p99_ms) : null,
        node_proxy_added_p50_ms:
          has("node-proxy") && has("direct") ? round3(T["node-proxy"].latency.p50_ms - T.direct.latency.p50_ms) : null,
        node_proxy_added_p99_ms:
          has("node-proxy") && has("direct") ? round3(T["node-proxy"].latency.p99_ms - T.direct.latency.p99_ms) : null,
        tollgate_added_p50_ms:
          has("tollgate") && has("direct") ? round3(T.tollgate.latency.p50_ms - T.direct.latency.p50_ms) : null,
        tollgate_added_p99_ms:
          has("tollgate") && has("direct") ? round3(T.tollgate.latency.p99_ms - T.direct.latency.p99_ms) : null,
        portkey_added_p50_ms:
          has("portkey") && has("direct") ? round3(T.portkey.latency.p50_ms - T.direct.latency.p50_ms) : null,
        portkey_added_p99_ms:
          has("portkey") && has("direct") ? round3(T.portkey.latency.p99_ms - T.direct.latency.p99_ms) : null,
      };
      cells.push(cell);
    }
  }
  results.cells = cells;
  sampler.stop();
  results.peak_rss_mb_whole_run = Object.fromEntries([...sampler.peak].map(([n, b]) => [n, round1(b / MB)]));
  const measuredPeaks = cells.flatMap((c) =>
    (c.targets.tollgate?.rounds ?? []).map((r) => r.processes.tollgate?.peak_rss_mb ?? 0),
  );
  const gatewayPeakMb = measuredPeaks.length ? Math.max(...measuredPeaks) : null;

  // The gateway's own accounting: metrics now, then its request log once stopped (flushed).
  if (gw) {
    const metricsText = await fetch(`${gw.statusUrl}/metrics`).then((r) => r.text());
    results.tollgate.metrics = {
      requests_chat_200: metricValue(metricsText, "tollgate_gateway_requests_total", {
        route: "chat_completions",
        status: "200",
      }),
      requests_chat_499: metricValue(metricsText, "tollgate_gateway_requests_total", {
        route: "chat_completions",
        status: "499",
      }),
      bench_counted_2xx:
        tollgateOk.measured + tollgateOk.warmup + checks.filter((c) => c.target === "tollgate" && c.ok).length,
      auth_failures: metricValue(metricsText, "tollgate_gateway_auth_failures_total", {}),
      upstream_errors: metricValue(metricsText, "tollgate_gateway_upstream_errors_total", {}),
    };
    await stopChild(gw.entry);
    results.tollgate.gateway_exit = gw.entry.exit;
    results.tollgate.request_log = requestLogCounts(gw.dataDir);
  }
  results.machine.loadavg_1m.end = loadavg();
  results.verdicts = verdicts(cells, gatewayPeakMb);
  results.finished_at = new Date().toISOString();

  // ---- print
  say("");
  console.log(
    `\nTollgate gateway throughput (${settings.rounds} rounds × ${settings.durationS} s per target, interleaved; load ${results.machine.loadavg_1m.start} → ${results.machine.loadavg_1m.end})\n`,
  );
  printTable(cells);
  console.log("");
  for (const v of results.verdicts) {
    const value =
      typeof v.value === "number"
        ? v.target.includes("ms")
          ? `${v.value.toFixed(3)} ms`
          : v.target.includes("MB")
            ? `${v.value} MB`
            : `${v.value.toFixed(2)}×`
        : v.value;
    console.log(`${v.met ? "MET    " : "NOT MET"}  ${v.target.padEnd(32)} ${v.where.padEnd(28)} ${value}`);
  }
  if (gw) {
    const mt = results.tollgate.metrics;
    const rl = results.tollgate.request_log;
    console.log(
      `\ngateway accounting: metrics 200 = ${fmtInt(mt.requests_chat_200)} (bench saw ${fmtInt(mt.bench_counted_2xx)} 2xx), 499 = ${fmtInt(mt.requests_chat_499)}; ` +
        (rl.error
          ? `request log: ${rl.error}`
          : `request_log rows ${JSON.stringify(rl.request_log_by_status)}, with usage ${fmtInt(rl.request_log_with_usage)}, gateway.db ${rl.gateway_db_mb} MB`),
    );
  }
  console.log(`peak RSS over the whole run (MB): ${JSON.stringify(results.peak_rss_mb_whole_run)}`);

  mkdirSync(settings.resultsDir, { recursive: true });
  const file = join(
    settings.resultsDir,
    `gateway-${startedAt
      .toISOString()
      .replace(/:/g, "-")
      .replace(/\.\d+Z$/, "Z")}.json`,
  );
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nresults: ${file}`);
}

await runBench("gateway throughput bench", main, cleanup, say);
