// The request log's hand-off, in-process: a LogWriter (gateway/dist) on a fresh SQLite file is
// fed request-log rows at a fixed rate (rows due by the clock, pushed every 1 ms), and the CPU of
// the whole process (main thread, writer thread, V8's helpers) is read over the measured window.
// A "noop" run builds the same rows without handing them over: its CPU is the harness's own, to
// subtract. With BENCH_BASELINE_ROOT (a built checkout) both builds run in turns, one child
// process each, order alternating, so a busy machine weighs on both alike.
//
// Knobs: BENCH_LOG_RATES (rows per second, "6000,2000"), BENCH_LOG_SECONDS (4 measured, after
// 1.5 warm-up), BENCH_LOG_PAIRS (6), BENCH_BASELINE_ROOT, BENCH_RESULTS_DIR.
// Writes bench/results/log-writer-<UTC time>.json.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { intList, loadavg, positive, revision } from "./lib/cli.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
const env = process.env;

if (env.LOG_WRITER_CHILD) {
  await child(
    env.LOG_WRITER_CHILD,
    Number(env.LOG_WRITER_RATE),
    Number(env.LOG_WRITER_SECONDS),
    env.LOG_WRITER_NOOP === "1",
  );
  process.exit(0);
}

/** One run in this process: prints one JSON line. */
async function child(root, rate, seconds, noop) {
  const { openStore } = await import(join(root, "gateway", "dist", "db", "store.js"));
  const { LogWriter } = await import(join(root, "gateway", "dist", "db", "request-log-writer.js"));
  const quiet = () => {};
  const logger = { info: quiet, warn: quiet, debug: quiet, trace: quiet, fatal: quiet, error: quiet };
  logger.child = () => logger;
  const dir = mkdtempSync(join(os.tmpdir(), "tollgate-log-writer-bench-"));
  const store = openStore(dir);
  const writer = new LogWriter(store, logger);
  let n = 0;
  const entry = () => ({
    at: new Date().toISOString(),
    requestId: `req_${(n++).toString(36).padStart(12, "0")}`,
    keyId: `key_01HXYZABCDEF${n % 50}`,
    model: "gpt-4o-mini",
    provider: "openai",
    status: 200,
    promptTokens: 12,
    completionTokens: 34,
    totalTokens: 46,
    cacheReadTokens: null,
    cacheWriteTokens: null,
    attempts: [{ provider: "openai", status: 200, latencyMs: 2.1 }],
    latencyMs: 3.456,
    stream: false,
    error: null,
    metadata: '{"team":"a","env":"bench"}',
    ephemeral: false,
    ephemeralTokenId: null,
    costUsd: 0.000123,
    mcp: null,
  });
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const warmMs = 1_500;
  let pushed = 0;
  let start;
  const begin = performance.now();
  await new Promise((done) => {
    const tick = setInterval(() => {
      const elapsed = performance.now() - begin;
      if (start === undefined && elapsed >= warmMs) {
        start = { at: performance.now(), cpu: process.cpuUsage(), rows: pushed };
        delay.enable();
      }
      const due = Math.floor((elapsed * rate) / 1000);
      for (; pushed < due; pushed++) {
        const e = entry();
        if (!noop) writer.request(e);
      }
      if (elapsed >= warmMs + seconds * 1000) {
        clearInterval(tick);
        done();
      }
    }, 1);
  });
  const cpu = process.cpuUsage(start.cpu);
  const rows = pushed - start.rows;
  const wallMs = performance.now() - start.at;
  delay.disable();
  // The writer thread is unref'd: keep the loop alive while close() waits for it.
  const keep = setInterval(() => {}, 1_000);
  await writer.close();
  clearInterval(keep);
  const written = store.requestLog.list(1e9).length;
  store.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(
    JSON.stringify({
      rows_per_s: Math.round((rows / wallMs) * 1000),
      cpu_us_per_row: (cpu.user + cpu.system) / rows,
      sys_us_per_row: cpu.system / rows,
      loop_delay_p99_ms: delay.percentile(99) / 1e6,
      written: noop ? null : written === pushed,
    }),
  );
}

const rates = intList("BENCH_LOG_RATES", env.BENCH_LOG_RATES, [6000, 2000]);
const seconds = positive("BENCH_LOG_SECONDS", env.BENCH_LOG_SECONDS, 4);
const pairs = Math.floor(positive("BENCH_LOG_PAIRS", env.BENCH_LOG_PAIRS, 6));
const baseline = env.BENCH_BASELINE_ROOT ? resolve(env.BENCH_BASELINE_ROOT) : undefined;
const builds = baseline
  ? [
      ["now", ROOT],
      ["baseline", baseline],
    ]
  : [["now", ROOT]];

function run(root, rate, noop) {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url)], {
    env: {
      ...env,
      LOG_WRITER_CHILD: root,
      LOG_WRITER_RATE: String(rate),
      LOG_WRITER_SECONDS: String(seconds),
      LOG_WRITER_NOOP: noop ? "1" : "0",
    },
    encoding: "utf8",
  });
  return JSON.parse(out.trim().split("\n").at(-1));
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const load = loadavg();
const results = [];
for (const rate of rates) {
  const runs = Object.fromEntries([...builds.map(([name]) => [name, []]), ["noop", []]]);
  for (let i = 0; i < pairs; i++) {
    const order = i % 2 === 0 ? builds : [...builds].reverse();
    for (const [name, root] of order) runs[name].push(run(root, rate, false));
    runs.noop.push(run(ROOT, rate, true));
    process.stderr.write(
      `${rate} rows/s, pair ${i + 1}/${pairs}: ${Object.entries(runs)
        .map(([name, r]) => `${name} ${r.at(-1).cpu_us_per_row.toFixed(1)}`)
        .join(", ")} µs CPU per row\n`,
    );
  }
  const summary = Object.fromEntries(
    Object.entries(runs).map(([name, r]) => [
      name,
      {
        median_cpu_us_per_row: median(r.map((x) => x.cpu_us_per_row)),
        median_loop_delay_p99_ms: median(r.map((x) => x.loop_delay_p99_ms)),
        every_row_written: r.every((x) => x.written !== false),
      },
    ]),
  );
  const noop = summary.noop.median_cpu_us_per_row;
  const line = builds.map(([name]) => `${name} ${(summary[name].median_cpu_us_per_row - noop).toFixed(1)}`).join(", ");
  console.log(`${rate} rows/s: the log's CPU per row (median, harness's ${noop.toFixed(1)} µs subtracted): ${line} µs`);
  if (baseline) {
    const wins = runs.now.filter((x, i) => x.cpu_us_per_row < runs.baseline[i].cpu_us_per_row).length;
    console.log(`  now below baseline in ${wins} of ${pairs} pairs`);
  }
  results.push({ rate, summary, runs });
}

let baselineCommit = null;
if (baseline) {
  try {
    baselineCommit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: baseline, encoding: "utf8" }).trim();
  } catch {
    baselineCommit = null;
  }
}
const report = { bench: "log-writer", at: new Date().toISOString(), node: process.version };
Object.assign(report, { cpu: os.cpus()[0]?.model, load_before: load, load_after: loadavg() });
Object.assign(report, {
  source: revision(ROOT, ["gateway"]),
  baseline: baseline ? { root: baseline, commit: baselineCommit } : null,
});
Object.assign(report, { seconds, pairs, results });
const resultsDir = env.BENCH_RESULTS_DIR || join(HERE, "results");
mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, `log-writer-${new Date().toISOString().slice(0, 19).replaceAll(":", "-")}Z.json`);
writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
console.log(`results: ${file}`);
