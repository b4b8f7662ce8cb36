import { type ChildProcess, fork, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { repoRoot } from "./processes.js";

// The runner's file-logged mode, for benchmarks: the child writes straight to
// a file descriptor, so its output never passes through (and never loads) the
// measuring process, unlike the piped mode of processes.ts that tests use.

export interface ChildExit {
  code?: number | null;
  signal?: NodeJS.Signals | null;
  /** Set when the child could not be spawned at all. */
  error?: string;
}

export interface ChildEntry {
  name: string;
  child: ChildProcess;
  /** stdout and stderr, appended. */
  logFile: string;
  /** Set once the child has exited. */
  exit: ChildExit | null;
  exited: Promise<ChildExit>;
}

export interface StartChildOptions {
  /** Where `<name>.log` goes. */
  logDir: string;
  /** The child's entire environment (nothing is inherited). */
  env: Record<string, string | undefined>;
  args?: string[];
  /** Node flags for the child (e.g. --import a preload). */
  nodeArgs?: string[];
  /** fork() with an IPC channel (e.g. to report a port) instead of spawn(). */
  ipc?: boolean;
  /** Default: the repository root. */
  cwd?: string;
}

/** Spawns a Node script with its stdout and stderr going to `<logDir>/<name>.log`. */
export function startChild(name: string, script: string, options: StartChildOptions): ChildEntry {
  const { logDir, env, args = [], nodeArgs = [], ipc = false, cwd = repoRoot } = options;
  const logFile = join(logDir, `${name}.log`);
  const fd = openSync(logFile, "a");
  const stdio: Array<"ignore" | number> = ["ignore", fd, fd];
  const child = ipc
    ? fork(script, args, { cwd, env, stdio: [...stdio, "ipc"], execArgv: nodeArgs })
    : spawn(process.execPath, [...nodeArgs, script, ...args], { cwd, env, stdio });
  closeSync(fd);
  const entry: ChildEntry = { name, child, logFile, exit: null, exited: undefined as unknown as Promise<ChildExit> };
  entry.exited = new Promise((resolve) => {
    child.once("error", (err) => {
      if (child.pid === undefined) {
        entry.exit = { error: err.message };
        resolve(entry.exit);
      }
    });
    child.once("exit", (code, signal) => {
      entry.exit = { code, signal };
      resolve(entry.exit);
    });
  });
  return entry;
}

/** Resolves with the `{ port }` an IPC child reports; rejects if it exits first or after `timeoutMs`. */
export async function waitForIpcPort(entry: ChildEntry, timeoutMs = 15_000): Promise<number> {
  const ac = new AbortController();
  try {
    return await Promise.race([
      new Promise<number>((resolve) => entry.child.once("message", (m: { port: number }) => resolve(m.port))),
      entry.exited.then((e) => {
        throw new Error(`${entry.name} exited (${JSON.stringify(e)}); log tail:\n${logTail(entry)}`);
      }),
      sleep(timeoutMs, undefined, { signal: ac.signal }).then(() => {
        throw new Error(`${entry.name} did not report its port within ${timeoutMs / 1000} s`);
      }),
    ]);
  } finally {
    ac.abort();
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with how the child exited. */
export async function stopChild(entry: ChildEntry, graceMs = 10_000): Promise<ChildExit> {
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
export function logText(entry: { logFile: string }): string {
  try {
    return readFileSync(entry.logFile, "utf8");
  } catch {
    return "";
  }
}

/** The last lines of a child's log, for error messages. */
export function logTail(entry: { logFile: string }, lines = 30): string {
  return logText(entry).split("\n").slice(-lines).join("\n") || "(no log)";
}

/** The first JSON log line satisfying `pred`; throws with the log's tail if the child exits or the time runs out. */
export async function waitForLogLine(
  entry: ChildEntry,
  pred: (line: Record<string, unknown>) => boolean,
  timeoutMs: number,
  what: string,
): Promise<Record<string, unknown>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    for (const raw of logText(entry).split("\n")) {
      if (!raw.startsWith("{")) continue;
      try {
        const line = JSON.parse(raw) as Record<string, unknown>;
        if (pred(line)) return line;
      } catch {
        // a partial line
      }
    }
    if (entry.exit)
      throw new Error(
        `${entry.name} exited (${JSON.stringify(entry.exit)}) before ${what}; log tail:\n${logTail(entry)}`,
      );
    if (performance.now() > deadline)
      throw new Error(`${entry.name}: no ${what} within ${timeoutMs} ms; log tail:\n${logTail(entry)}`);
    // A file has no event to await; the bench polls it while nothing is measured.
    await sleep(50);
  }
}

/** The machine a figure was measured on. */
export function machine(): { nproc: number; cpu: string; memory_gib: number; node: string; platform: string } {
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
