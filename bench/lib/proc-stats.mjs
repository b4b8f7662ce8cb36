// Gateway throughput bench: /proc readings (RSS, CPU), rounding and latency percentiles.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

export const round1 = (x) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);
export const round2 = (x) => (x === null || x === undefined ? null : Math.round(x * 100) / 100);
export const round3 = (x) => (x === null || x === undefined ? null : Math.round(x * 1000) / 1000);
export const fmtInt = (x) => (x === null || x === undefined ? "–" : Math.round(x).toLocaleString("en-US"));

/** The commit checked out in a built tree, if it is a git checkout. */
export function revisionOf(root) {
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
export function rssOf(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Busy and total CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineCpu() {
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
export function cpuOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start at ") ".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime (fields 14, 15)
  } catch {
    return null;
  }
}

export function freePort() {
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
export class Samples {
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
