// Helpers shared by the bench scripts that run Tollgate's services as child processes.
import { readFileSync } from "node:fs";
import os from "node:os";

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
