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
// Run: pnpm bench (builds first). Knobs: see README.md or `parseEnv` (lib/throughput-settings.mjs).
// Timings only: nothing here asserts. Every child is stopped and the temp dir
// removed at the end, on errors and on Ctrl-C.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { machine, stopChild } from "@tollgate/testkit";
import { loadavg, resultsHead, runBench, writeResults } from "./lib/cli.mjs";
import { fmtInt, revisionOf, round1, round2, round3, rssOf, Samples } from "./lib/proc-stats.mjs";
import { analyzePerf, perfAvailable, recordPerf } from "./lib/perf-profile.mjs";
import { load, pidOfTarget, sanity, targetRequest } from "./lib/throughput-load.mjs";
import { metricValue, printSummary, requestLogCounts, TARGETS, verdicts } from "./lib/throughput-report.mjs";
import { cleanup, run, sampler } from "./lib/throughput-runtime.mjs";
import {
  seed,
  startControlPlane,
  startGateway,
  startBare,
  startNodeProxy,
  startSameWork,
  startPortkey,
  startUpstream,
} from "./lib/throughput-services.mjs";
import {
  BODIES,
  CONTROL_PLANE_MAIN,
  GATEWAY_MAIN,
  MB,
  requireHere,
  ROOT,
  say,
  settings,
} from "./lib/throughput-settings.mjs";

// ---------------------------------------------------------------- main

async function main() {
  for (const p of [CONTROL_PLANE_MAIN, GATEWAY_MAIN]) {
    if (!existsSync(p))
      throw new Error(`${p} is missing: run \`pnpm build\` (tsc -b) first; \`pnpm bench\` builds before running.`);
  }
  const { startedAt, head } = resultsHead("gateway-throughput", ROOT, machine());
  const results = {
    ...head,
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

  if (settings.perfDir) {
    if (!perfAvailable()) throw new Error("BENCH_PERF: perf cannot record here (Debian: apt-get install linux-perf)");
    mkdirSync(settings.perfDir, { recursive: true });
  }
  run.tmpDir = mkdtempSync(join(os.tmpdir(), "tollgate-bench-gw-"));
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
  if (settings.targets.includes("bare")) {
    const bp = await startBare(upstream.url);
    endpoints.bare = bp.url;
    sampler.track("bare", bp.entry.child.pid);
    pidOfTarget.set("bare", bp.entry.child.pid);
  }

  if (settings.targets.includes("same-work")) {
    const sw = await startSameWork(upstream.url);
    endpoints["same-work"] = sw.url;
    sampler.track("same-work", sw.entry.child.pid);
    pidOfTarget.set("same-work", sw.entry.child.pid);
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

  // BENCH_PERF: the Node targets' measured runs, recorded with perf (lib/perf-profile.mjs).
  const PERF_TARGETS = new Set(["tollgate", "baseline", "same-work", "bare", "node-proxy"]);
  const perfRuns = [];

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
          const pid = pidOfTarget.get(target);
          const perfFile =
            settings.perfDir && PERF_TARGETS.has(target) && pid
              ? join(settings.perfDir, `${target}-${mode}-c${connections}-r${round}.data`)
              : null;
          const recording = perfFile ? recordPerf(pid, perfFile) : null;
          // perf attaches to every thread before the load starts (else the window misses the first requests).
          if (recording) await sleep(300);
          const run = await load(req, mode, connections, settings.durationS, { prefix, target });
          const procs = close();
          if (recording) {
            await recording.stop();
            perfRuns.push({ file: perfFile, pid, requests: run.samples.length, target, mode, connections });
          }
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
        tollgate_over_bare: has("tollgate") && has("bare") ? round3(T.tollgate.rps / T.bare.rps) : null,
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
  if (perfRuns.length > 0) {
    // Per cell and target, where the CPU per request went (all rounds together).
    results.perf = {};
    for (const cell of cells) {
      const key = `${cell.mode} c=${cell.connections}`;
      const here = perfRuns.filter((r) => r.mode === cell.mode && r.connections === cell.connections);
      results.perf[key] = {};
      for (const target of new Set(here.map((r) => r.target))) {
        // A failed analysis is reported, not allowed to lose the run's figures.
        try {
          results.perf[key][target] = analyzePerf(here.filter((r) => r.target === target));
        } catch (err) {
          results.perf[key][target] = { error: String(err?.message ?? err) };
          say(`perf analysis of ${target}, ${key} failed: ${results.perf[key][target].error}`);
        }
      }
      printPerf(key, results.perf[key]);
    }
    // The live maps are large and of no use once read (each recording kept its own beside it).
    for (const pid of new Set(perfRuns.map((r) => r.pid))) rmSync(`/tmp/perf-${pid}.map`, { force: true });
  }
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

  printSummary(results, cells, Boolean(gw));

  const file = writeResults(settings.resultsDir, "gateway", startedAt, results);
  console.log(`\nresults: ${file}`);
}

/** The perf breakdown of one cell, targets side by side (µs of CPU per request). */
function printPerf(key, byTarget) {
  const targets = Object.keys(byTarget).filter((t) => !byTarget[t].error);
  const col = (v) => String(v ?? "–").padStart(12);
  for (const part of ["by_group", "by_entry"]) {
    const rows = new Map();
    for (const t of targets) for (const k of Object.keys(byTarget[t][part])) rows.set(k, rows.get(k) ?? {});
    for (const t of targets) for (const [k, v] of Object.entries(byTarget[t][part])) rows.get(k)[t] = v;
    console.log(`\nperf, ${key}, CPU µs per request ${part.replace("_", " ")}:`);
    console.log(`${"".padEnd(70)}${targets.map((t) => t.padStart(12)).join("")}`);
    console.log(`${"all threads".padEnd(70)}${targets.map((t) => col(byTarget[t].cpu_us_per_req)).join("")}`);
    for (const [k, v] of [...rows].sort((a, b) => (b[1][targets[0]] ?? 0) - (a[1][targets[0]] ?? 0)).slice(0, 16))
      console.log(`${k.slice(0, 69).padEnd(70)}${targets.map((t) => col(v[t])).join("")}`);
  }
}

await runBench("gateway throughput bench", main, cleanup, say);
