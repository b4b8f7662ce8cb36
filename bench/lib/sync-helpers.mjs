// Key sync bench: progress output, memory, percentiles, polling and the revision measured.
import { execFileSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import v8 from "node:v8";
import vm from "node:vm";
import { HERE } from "./sync-settings.mjs";

// ---------------------------------------------------------------- helpers

const isTty = process.stdout.isTTY === true;
let progressOpen = false;
export function progress(label, done, total) {
  const line = `[${label}] ${done}/${total}`;
  if (isTty) {
    process.stdout.write(`\r${line}   `);
    progressOpen = done < total;
    if (!progressOpen) process.stdout.write("\n");
  } else if (done === total || done % 50 === 0) {
    console.log(line);
  }
}
export function say(message) {
  if (progressOpen) process.stdout.write("\n");
  progressOpen = false;
  console.log(message);
}

/** `--expose-gc` without a command-line flag, so `node bench/sync-propagation.mjs` works as is. */
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc");
/** Memory after two full collections: rss, and what the JS heap and off-heap buffers hold. */
export function settledMemory() {
  gc();
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, held: m.heapUsed + m.external };
}

/** Nearest-rank percentile of an unsorted sample. */
function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}
export function summarize(values) {
  const round = (v) => (v === null ? null : Math.round(v * 100) / 100);
  return {
    n: values.length,
    p50: round(percentile(values, 50)),
    p90: round(percentile(values, 90)),
    p99: round(percentile(values, 99)),
    max: round(values.length ? Math.max(...values) : null),
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** Spins on setImmediate (I/O still runs between checks) until `done()` or the deadline. */
export async function pollUntil(done, timeoutMs, what) {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await tick();
  }
}

/** The commit measured, and whether the working tree had changes on top of it. */
export function revision() {
  try {
    const git = (...args) =>
      execFileSync("git", args, { cwd: HERE, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    return {
      commit: git("rev-parse", "--short", "HEAD"),
      dirty: git("status", "--porcelain", "--", "../control-plane", "../gateway", "../shared") !== "",
    };
  } catch {
    // Not a git checkout (e.g. an exported tree): say which commit it came from, if told.
    return process.env.BENCH_SOURCE_COMMIT ? { commit: process.env.BENCH_SOURCE_COMMIT, dirty: false } : null;
  }
}
