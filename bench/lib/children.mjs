// Helpers shared by the bench scripts that run Tollgate's services as child processes.
import { readFileSync } from "node:fs";
import os from "node:os";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";

/** The machine a figure was measured on. */
export function machine() {
  let cpuinfo = "";
  try {
    cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    // not Linux
  }
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? "unknown";
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpu: model.trim(),
    memory_gib: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  };
}

/** The whole environment of a child service: nothing is inherited but PATH, HOME and TZ. */
export function baseEnv() {
  const env = { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin", HOME: process.env.HOME ?? os.tmpdir(), NODE_ENV: "production" };
  if (process.env.TZ) env.TZ = process.env.TZ;
  return env;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with how the child exited. */
export async function stopChild(entry, graceMs = 10_000) {
  if (entry.exit) return entry.exit;
  try {
    entry.child.kill("SIGTERM");
  } catch {
    // gone
  }
  const timer = setTimeout(() => {
    try {
      entry.child.kill("SIGKILL");
    } catch {
      // gone
    }
  }, graceMs);
  try {
    return await entry.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** A child's log so far ("" before it exists). */
export function logText(entry) {
  try {
    return readFileSync(entry.logFile, "utf8");
  } catch {
    return "";
  }
}

/** The last lines of a child's log, for error messages. */
export function logTail(entry, lines = 30) {
  return logText(entry).split("\n").slice(-lines).join("\n") || "(no log)";
}

/** The first JSON log line satisfying `pred`; throws with the log's tail if the child exits or the time runs out. */
export async function waitForLogLine(entry, pred, timeoutMs, what) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    for (const raw of logText(entry).split("\n")) {
      if (!raw.startsWith("{")) continue;
      try {
        const line = JSON.parse(raw);
        if (pred(line)) return line;
      } catch {
        // a partial line
      }
    }
    if (entry.exit) throw new Error(`${entry.name} exited (${JSON.stringify(entry.exit)}) before ${what}; log tail:\n${logTail(entry)}`);
    if (performance.now() > deadline) throw new Error(`${entry.name}: no ${what} within ${timeoutMs} ms; log tail:\n${logTail(entry)}`);
    await sleep(50);
  }
}
