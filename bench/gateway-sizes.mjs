#!/usr/bin/env node
// Payload-size bench: what the gateway costs per request at real prompt, answer and stream
// sizes, beside the barest Node proxy doing the work any LLM proxy must (node-proxy.mjs with
// BARE=1: node:http in, undici out, key hash, JSON.parse of request and answer).
//
// Same processes as gateway-throughput.mjs (fake upstream, control plane on PGlite, gateway
// with a token-limited team so the quota estimate runs, bare proxy; optionally a "baseline"
// gateway built from BENCH_BASELINE_ROOT). Each cell (lib/sizes-settings.mjs) is run by every
// target in turn, for BENCH_ROUNDS interleaved rounds, from BENCH_SIZE_CONNECTIONS sequential
// client loops (default 1). Per target: latency p50/p99 and time to first byte, the proxy
// process's CPU per request (from /proc/<pid>/stat: robust on a loaded machine, unlike wall
// time), CPU per chunk for streams, and peak RSS. BENCH_SOAK_S=600 then runs small requests
// at 32 connections for that long and reports the gateway's RSS over time.
//
// Run: pnpm bench:sizes (builds first). Knobs: lib/sizes-settings.mjs and README.md.

import { existsSync, mkdtempSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { machine } from "@tollgate/testkit";
import { loadavg, resultsHead, runBench, writeResults } from "./lib/cli.mjs";
import { revisionOf, round1, rssOf } from "./lib/proc-stats.mjs";
import { admin, UPSTREAM_KEY } from "./lib/services.mjs";
import { probe, timedRun } from "./lib/sizes-client.mjs";
import { printSizes, summarize } from "./lib/sizes-report.mjs";
import { bodyOf, parseSizesEnv } from "./lib/sizes-settings.mjs";
import { load } from "./lib/throughput-load.mjs";
import { cleanup, run, sampler } from "./lib/throughput-runtime.mjs";
import { seed, startBare, startControlPlane, startGateway, startUpstream } from "./lib/throughput-services.mjs";
import { CONTROL_PLANE_MAIN, GATEWAY_MAIN, MB, ROOT, say, settings } from "./lib/throughput-settings.mjs";

const sizes = parseSizesEnv(process.env);

async function main() {
  for (const p of [CONTROL_PLANE_MAIN, GATEWAY_MAIN])
    if (!existsSync(p)) throw new Error(`${p} is missing: run \`pnpm build\` first`);
  const baselineRoot = settings.baselineRoot;
  const targets = ["direct", "bare", "tollgate", ...(baselineRoot ? ["baseline"] : [])];
  const { startedAt, head } = resultsHead("gateway-sizes", ROOT, machine());
  const results = {
    ...head,
    baseline: baselineRoot ? { root: baselineRoot, commit: revisionOf(baselineRoot) } : null,
    settings: { ...sizes, quota: settings.quota },
    targets,
  };
  say(
    `payload-size bench: ${sizes.cells.length} cells × ${targets.length} targets × ${sizes.rounds} rounds × ${sizes.cellS} s`,
  );

  run.tmpDir = mkdtempSync(join(os.tmpdir(), "tollgate-bench-sizes-"));
  const upstream = await startUpstream();
  const bare = await startBare(upstream.url);
  const cp = await startControlPlane();
  const seeded = await seed(cp);
  const gw = await startGateway(cp, seeded.gatewayToken, upstream.url);
  const pids = { direct: upstream.entry.child.pid, bare: bare.entry.child.pid, tollgate: gw.entry.child.pid };
  const endpoints = { direct: upstream.url, bare: bare.url, tollgate: gw.url };
  if (baselineRoot) {
    const token = (await admin(cp, "POST", "/internal/gateway-tokens", { name: "bench-baseline" })).token;
    const main = join(baselineRoot, "gateway", "dist", "main.js");
    const base = await startGateway(cp, token, upstream.url, { name: "baseline", main });
    pids.baseline = base.entry.child.pid;
    endpoints.baseline = base.url;
  }
  for (const [name, pid] of Object.entries(pids)) sampler.track(name === "direct" ? "upstream" : name, pid);
  sampler.track("control-plane", cp.entry.child.pid);
  sampler.start();
  const reqOf = (t) => ({
    url: `${endpoints[t]}/v1/chat/completions`,
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${t === "tollgate" || t === "baseline" ? seeded.apiKey : UPSTREAM_KEY}`,
    },
  });
  results.idle_rss_mb = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, round1(rssOf(pid) / MB)]));

  const cells = [];
  for (const cell of sizes.cells) {
    const body = bodyOf(cell);
    const rows = Object.fromEntries(targets.map((t) => [t, []]));
    for (const t of targets) {
      const p = await probe(reqOf(t), body);
      // The gateway hides the usage chunk it asked for on behalf of a client that did not.
      const usageExpected = !(cell.chunks && !cell.clientUsage && (t === "tollgate" || t === "baseline"));
      if (!p.ok || p.usage !== usageExpected)
        throw new Error(`${cell.name}: ${t} answered ${p.status}: ${p.sample ?? `usage ${p.usage}`}`);
      // Warm-up, not measured: JIT, pools, connections.
      await timedRun(reqOf(t), body, { seconds: 0.3, minRequests: 5, connections: sizes.connections });
    }
    for (let round = 1; round <= sizes.rounds; round++) {
      for (const t of targets) {
        const close = sampler.open();
        const r = await timedRun(reqOf(t), body, {
          seconds: sizes.cellS,
          minRequests: sizes.minRequests,
          connections: sizes.connections,
        });
        const procs = close();
        rows[t].push({ ...r, procs });
        say(`${cell.name} r${round} ${t}: ${r.total.length} ok, p50 ${r.total.stats().p50_ms} ms`);
        await sleep(100);
      }
    }
    cells.push(summarize(cell, body.length, targets, rows));
  }
  results.cells = cells;

  if (sizes.soakS > 0) results.soak = await soak(reqOf("tollgate"), pids.tollgate);
  sampler.stop();
  results.peak_rss_mb_whole_run = Object.fromEntries([...sampler.peak].map(([n, b]) => [n, round1(b / MB)]));
  results.machine.loadavg_1m.end = loadavg();
  results.finished_at = new Date().toISOString();
  printSizes(results);
  const file = writeResults(settings.resultsDir, "sizes", startedAt, results);
  console.log(`\nresults: ${file}`);
}

/** Small requests at full load for BENCH_SOAK_S: the gateway's RSS every 5 s, and its trend. */
async function soak(req, pid) {
  say(`soak: ${sizes.soakS} s of small requests at ${sizes.soakConnections} connections`);
  const points = [];
  const t0 = Date.now();
  const timer = setInterval(() => points.push([Math.round((Date.now() - t0) / 1000), round1(rssOf(pid) / MB)]), 5_000);
  try {
    const r = await load(req, "plain", sizes.soakConnections, sizes.soakS, { prefix: "soak", target: "tollgate" });
    const rss = points.map((p) => p[1]);
    const third = Math.max(1, Math.floor(rss.length / 3));
    const avg = (xs) => round1(xs.reduce((a, b) => a + b, 0) / xs.length);
    return {
      seconds: sizes.soakS,
      connections: sizes.soakConnections,
      requests: r.samples.length,
      rps: round1(r.samples.length / r.elapsedS),
      non2xx: r.non2xx,
      rss_mb_first_third_avg: avg(rss.slice(0, third)),
      rss_mb_last_third_avg: avg(rss.slice(-third)),
      rss_mb_max: Math.max(...rss),
      rss_mb_every_5s: points,
    };
  } finally {
    clearInterval(timer);
  }
}

await runBench("gateway payload-size bench", main, cleanup, say);
