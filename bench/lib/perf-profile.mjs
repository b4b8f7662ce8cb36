// On-CPU profiles of a bench target with Linux perf (`BENCH_PERF=<dir>`, gateway-throughput.mjs).
//
// V8's own profiler (`--cpu-prof`) samples on a wall clock: time a process spends descheduled
// (a writev that woke the peer on a 2-core machine, a core taken by another process) lands on
// whatever function was on the stack, so a busy machine's profile blames writev and postMessage
// for time nobody spent. perf's cpu-clock event samples only while a thread runs: kernel, libc,
// V8 (GC, inline-cache misses, builtins), Node's C++ and JIT code with their real share, and
// every thread of the process (the SQLite writer, V8's GC helpers).
//
// Needs `perf` (Debian: linux-perf) and the targets started with --perf-basic-prof (the bench
// does that when BENCH_PERF is set), which writes /tmp/perf-<pid>.map for JIT code. V8 reuses
// code space as functions are optimized and collected, and perf would name a later function
// after an earlier one that lived at the same address: newestMapEntries keeps only the newest entry
// covering each address before the stacks are read.

import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";

/** perf's sampling rate: 999 Hz keeps its own cost small and gives ~10,000 samples in 10 s. */
const FREQUENCY_HZ = 999;

/** Whether perf can record here (installed, and perf_event_open allowed). */
export function perfAvailable() {
  const r = spawnSync("perf", ["record", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"], { stdio: "ignore" });
  return r.status === 0;
}

/**
 * Starts `perf record` on a process (all its threads). stop() ends it once the file is written,
 * and keeps the process's perf map as it is then beside it (`<file>.map`): code the process
 * compiles later may reuse the addresses this recording saw.
 */
export function recordPerf(pid, file) {
  const child = spawn(
    "perf",
    ["record", "-q", "-e", "cpu-clock", "-F", String(FREQUENCY_HZ), "-g", "-p", String(pid), "-o", file],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return {
    async stop() {
      child.kill("SIGINT");
      const { code, signal } = await exited;
      // perf ends on the SIGINT itself, or with 0 once it has handled it.
      if (!(code === 0 || signal === "SIGINT") || !existsSync(file))
        throw new Error(`perf record failed (${code ?? signal}): ${stderr.trim()}`);
      const map = `/tmp/perf-${pid}.map`;
      if (existsSync(map)) copyFileSync(map, `${file}.map`);
    },
  };
}

/**
 * A perf map's text keeping, for every address, only the newest entry that covers it: V8 reuses
 * code space, and perf would otherwise name later code after what lived there before.
 */
export function newestMapEntries(text) {
  const entries = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(lines[i]);
    if (m) {
      const start = Number.parseInt(m[1], 16);
      entries.push({ start, end: start + Number.parseInt(m[2], 16), i, line: lines[i] });
    }
  }
  // Newest first; an entry overlapping a newer kept one describes code that is gone.
  entries.sort((a, b) => b.i - a.i);
  const kept = []; // sorted by start, non-overlapping
  const firstEndingAfter = (x) => {
    let lo = 0;
    let hi = kept.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (kept[mid].end <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  for (const e of entries) {
    const at = firstEndingAfter(e.start);
    if (at < kept.length && kept[at].start < e.end) continue;
    kept.splice(at, 0, e);
  }
  return `${kept.map((e) => e.line).join("\n")}\n`;
}

/**
 * Runs `fn` while /tmp/perf-<pid>.map (where perf looks) holds `text`. The live file is moved
 * aside, not rewritten: the process may still be appending to it.
 */
function withPerfMap(pid, text, fn) {
  const path = `/tmp/perf-${pid}.map`;
  const aside = `${path}.live`;
  const live = existsSync(path);
  if (live) renameSync(path, aside);
  writeFileSync(path, text);
  try {
    return fn();
  } finally {
    rmSync(path, { force: true });
    if (live) renameSync(aside, path);
  }
}

/** `perf script` of a recording as stacks: arrays of { sym, dso }, outermost first. */
function readStacks(file) {
  const r = spawnSync("perf", ["script", "-i", file], { maxBuffer: 1 << 30, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`perf script failed: ${r.stderr}`);
  const stacks = [];
  let frames = null;
  for (const line of r.stdout.split("\n")) {
    if (line.trim() === "") {
      if (frames && frames.length) stacks.push(frames.reverse());
      frames = null;
      continue;
    }
    if (line[0] !== " " && line[0] !== "\t") {
      frames = [];
      continue;
    }
    const m = /^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)$/.exec(line);
    if (m && frames) frames.push({ sym: m[1].replace(/\+0x[0-9a-f]+$/, ""), dso: m[2] });
  }
  if (frames && frames.length) stacks.push(frames.reverse());
  return stacks;
}

/** A JIT frame's module, shortened: gateway/…, shared/…, node:…, or the npm package. */
function moduleOf(sym) {
  const m = /(file:\/\/\S+|node:\S+|\/\S+\.m?js|\[worker eval\])/.exec(sym);
  if (!m) return "js (other)";
  const url = m[1].replace(/:\d+:\d+$/, "");
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const own = /\/(gateway|shared|bench)\/(?:dist\/|lib\/)?(.*)$/.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  return url.replace(/^file:\/\//, "");
}

/** What a group of modules is, for the summary: the proxy's own code, Node's HTTP, undici, … */
function groupOf(module) {
  if (module.startsWith("gateway/") || module.startsWith("shared/") || module.startsWith("bench/")) return "own code";
  if (
    /^node:(_http|internal\/http|internal\/streams|net|internal\/stream_base|events|internal\/process\/task_queues|timers|internal\/timers)/.test(
      module,
    )
  )
    return "node http, streams, events, timers";
  if (module.startsWith("node:")) return "node (other)";
  return module;
}

/** A perf map name of JavaScript code (V8 also names its builtins and bytecode handlers there). */
const isJs = (sym) => /^(JS|Script|Eval|Function|LazyCompile):/.test(sym);

const GC = /Scaveng|Heap::|MarkCompact|ConcurrentMarking|Sweeper|Evacuat|MinorMark|MemoryAllocator|ArrayBufferSweeper/;

/**
 * Where the CPU went, in µs per request: by thread, by what the innermost JavaScript frame
 * belongs to (everything beneath it, syscalls included, is its cost), and by the entry point
 * the event loop called (a request's stages: the request's head, its body, the upstream's answer…).
 */
export function analyzePerf(recordings) {
  const byGroup = new Map();
  const byModule = new Map();
  const byEntry = new Map();
  const byKind = new Map();
  let samples = 0;
  let requests = 0;
  const add = (map, k, n) => map.set(k, (map.get(k) ?? 0) + n);
  for (const { file, pid, requests: r } of recordings) {
    requests += r;
    const map = `${file}.map`;
    const stacks = existsSync(map)
      ? withPerfMap(pid, newestMapEntries(readFileSync(map, "utf8")), () => readStacks(file))
      : readStacks(file);
    for (const frames of stacks) {
      samples++;
      const worker = frames.some((f) => f.sym.includes("node::worker::Worker::Run"));
      const helper = !worker && frames.some((f) => f.sym.includes("PlatformWorkerThread"));
      const leaf = frames[frames.length - 1];
      const kind = leaf.dso.includes("kernel")
        ? "kernel"
        : GC.test(leaf.sym)
          ? "V8 GC"
          : isJs(leaf.sym)
            ? "JIT code"
            : /^(Builtins_|v8::|Runtime_|Builtin:|BytecodeHandler:|RegExp:)/.test(leaf.sym)
              ? "V8 builtins and runtime"
              : /node::|uv_|uv__/.test(leaf.sym)
                ? "Node and libuv C++"
                : leaf.dso.includes("libc")
                  ? "libc (malloc, write…)"
                  : leaf.dso.replace(/.*\//, "");
      add(byKind, kind, 1);
      if (worker) {
        add(byGroup, "worker thread (SQLite writer)", 1);
        continue;
      }
      if (helper) {
        add(byGroup, GC.test(frames.map((f) => f.sym).join(";")) ? "V8 GC (helper threads)" : "V8 helper threads", 1);
        continue;
      }
      const js = frames.filter((f) => isJs(f.sym));
      const inner = js[js.length - 1];
      if (!inner) {
        add(
          byGroup,
          frames.some((f) => GC.test(f.sym)) ? "V8 GC (main thread)" : "event loop, no JS (epoll, parser C++…)",
          1,
        );
      } else {
        const module = moduleOf(inner.sym);
        add(byModule, module, 1);
        add(byGroup, frames.some((f) => GC.test(f.sym)) ? "V8 GC (main thread)" : groupOf(module), 1);
      }
      // The entry: the first JS frame the event loop called, past Node's dispatch of ticks and timers.
      const entry = js.find(
        (f) => !/processTicksAndRejections|processImmediate|listOnTimeout|processTimers|runNextTicks/.test(f.sym),
      );
      add(
        byEntry,
        entry
          ? entry.sym
              .replace(/^\w+:[*~^]?\s*/, "")
              .replace(/file:\/\/\/\S*?\/(gateway|bench)\/(dist\/)?/, "$1/")
              .replace(/\/\S*node_modules\/\.pnpm\/([^/]+)\/\S*\/([^/]+)$/, "$1/$2")
          : "(no JS)",
        1,
      );
    }
  }
  const usPer = (n) => (requests ? Math.round(((n / FREQUENCY_HZ) * 1e6 * 10) / requests) / 10 : null);
  const table = (map, top) =>
    Object.fromEntries(
      [...map]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([k, n]) => [k, usPer(n)]),
    );
  return {
    requests,
    samples,
    cpu_us_per_req: usPer(samples),
    by_group: table(byGroup, 20),
    by_kind: table(byKind, 12),
    by_module: table(byModule, 30),
    by_entry: table(byEntry, 20),
  };
}
