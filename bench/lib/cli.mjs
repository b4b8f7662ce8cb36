// What every bench script needs around its measurements: reading its settings from the
// environment, reporting progress on stderr, and naming the commit and the machine load.

import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

/** A positive number from the environment, or `fallback` when unset. */
export function positive(name, value, fallback) {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not ${JSON.stringify(value)}`);
  return n;
}

/** A comma-separated list of positive integers from the environment, or `fallback` when unset. */
export function intList(name, value, fallback) {
  if (value === undefined || value.trim() === "") return fallback;
  return value.split(",").map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n <= 0)
      throw new Error(`${name} must be a comma-separated list of positive integers, not ${JSON.stringify(value)}`);
    return n;
  });
}

/** A comma-separated list of names from `allowed`, or `fallback` when unset. */
export function choiceList(name, value, allowed, fallback) {
  if (value === undefined || value.trim() === "") return fallback;
  const out = value.split(",").map((s) => s.trim());
  for (const v of out)
    if (!allowed.includes(v)) throw new Error(`${name}: ${JSON.stringify(v)} is not one of ${allowed.join(", ")}`);
  return out;
}

/**
 * `progress` rewrites one status line on a terminal; `say` prints a line, clearing that status first.
 * With `plainEveryMs`, progress also reaches a non-terminal stderr, at most that often.
 */
export function createReporter({ plainEveryMs } = {}) {
  const isTty = process.stderr.isTTY === true;
  let progressShown = false;
  let lastPlainProgress = 0;
  return {
    progress(text) {
      if (isTty) {
        process.stderr.write(`\r\x1b[2K${text}`);
        progressShown = true;
      } else if (plainEveryMs !== undefined && performance.now() - lastPlainProgress >= plainEveryMs) {
        lastPlainProgress = performance.now();
        process.stderr.write(`${text}\n`);
      }
    },
    say(text) {
      if (progressShown) {
        process.stderr.write("\r\x1b[2K");
        progressShown = false;
      }
      process.stderr.write(`${text}\n`);
    },
  };
}

/** The one-minute load average, to two decimals. */
export const loadavg = () => Math.round(os.loadavg()[0] * 100) / 100;

/** The commit measured (in `root`), and whether `dirs` had changes on top of it. */
export function revision(root, dirs) {
  if (process.env.BENCH_SOURCE_COMMIT)
    return { commit: process.env.BENCH_SOURCE_COMMIT, dirty: false, build_root: root };
  try {
    const git = (...args) =>
      execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    return {
      commit: git("rev-parse", "--short", "HEAD"),
      dirty: git("status", "--porcelain", "--", ...dirs) !== "",
      build_root: root,
    };
  } catch {
    return { commit: null, dirty: null, build_root: root };
  }
}

/** Runs the bench's `main`, then `cleanup` whatever happens; the exit code says whether it failed. */
export async function runBench(name, main, cleanup, say) {
  try {
    await main();
    await cleanup();
    process.exit(0);
  } catch (err) {
    say(`\n${name} failed: ${err?.stack ?? err}`);
    await cleanup();
    process.exit(1);
  }
}

/** Writes a bench's results to `<dir>/<prefix>-<UTC start time>.json`; returns the path. */
export function writeResults(dir, prefix, startedAt, results) {
  mkdirSync(dir, { recursive: true });
  const stamp = startedAt
    .toISOString()
    .replace(/:/g, "-")
    .replace(/\.\d+Z$/, "Z");
  const file = join(dir, `${prefix}-${stamp}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}

/** What every results file starts with: the bench, when, the machine and its load, the commit measured. */
export function resultsHead(bench, root, machineInfo) {
  const startedAt = new Date();
  return {
    startedAt,
    head: {
      bench,
      started_at: startedAt.toISOString(),
      machine: { ...machineInfo, loadavg_1m: { start: loadavg(), end: null } },
      revision: revision(root, ["gateway", "shared"]),
    },
  };
}
