// Gateway throughput bench: child processes, cleanup on exit and Ctrl-C, and RSS/CPU sampling.
import { rmSync } from "node:fs";
import os from "node:os";
import { startChild as startLoggedChild, stopChild } from "@tollgate/testkit";
import { stopChildrenOnExit } from "./services.mjs";
import { cpuOf, machineCpu, round1, round2, rssOf } from "./proc-stats.mjs";
import { MB, say, settings } from "./throughput-settings.mjs";

// ---------------------------------------------------------------- child processes and cleanup

const children = [];
/** The children BENCH_PERF records (by startChild name): the Node proxies, not the upstream or the control plane. */
export const PERF_CHILDREN = new Set(["gateway", "baseline", "same-work", "bare", "node-proxy"]);
/** What main and the load runner share with cleanup: the temp dir and the running load. */
export const run = { tmpDir: undefined, currentLoad: undefined };
let cleaning;

/** Spawns a Node script, its stdout and stderr to `<tmp>/<name>.log` (never through this loop). */
export function startChild(name, script, args, env, { ipc = false, nodeArgs = [] } = {}) {
  // BENCH_PERF: the recorded targets name their JIT code for perf (/tmp/perf-<pid>.map). Node 20 then
  // also writes an isolate-*-v8.log into the working directory: the temp dir, not the checkout.
  const perf = settings.perfDir !== null && PERF_CHILDREN.has(name);
  const entry = startLoggedChild(name, script, {
    logDir: run.tmpDir,
    env,
    args,
    nodeArgs: perf ? ["--perf-basic-prof", ...nodeArgs] : nodeArgs,
    ipc,
    ...(perf ? { cwd: run.tmpDir } : {}),
  });
  children.push(entry);
  return entry;
}

/** Waits for a JSON log line matching `pred` in the child's log file. */

export function cleanup() {
  cleaning ??= (async () => {
    try {
      run.currentLoad?.stop();
    } catch {
      // already stopped
    }
    sampler.stop();
    await Promise.all(children.map((c) => stopChild(c, 5_000)));
    if (run.tmpDir) {
      if (settings.keepTmp) say(`keeping ${run.tmpDir} (BENCH_KEEP_TMP=1)`);
      else rmSync(run.tmpDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
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
export const sampler = new Sampler(settings.rssIntervalMs);
