import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file runs from `<root>/testkit/dist/`). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

// ---------------------------------------------------------------------------
// The process runner: spawn a Node script with an explicit env, capture its
// output (file + memory), wait for log lines, stop it. Tests, benchmarks and
// scripts/start.mjs all start Tollgate's services through this.
// ---------------------------------------------------------------------------

/** A pino line, or `{ msg: <raw line> }` for a line that is not JSON. */
export type LogLine = Record<string, unknown> & { msg?: unknown };
export type LogMatch = string | ((line: LogLine, raw: string) => boolean);

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServiceProcess {
  pid: number;
  /** Where stdout+stderr are appended (across restarts that reuse it); "" with `logFile: null`. */
  logFile: string;
  /** Everything this process wrote so far (stdout and stderr interleaved). */
  logs(): string;
  /** Parsed lines so far (non-JSON lines as `{ msg: raw }`). */
  logLines(): LogLine[];
  /** Number of lines so far: pass to `waitForLog(..., { after })` to ignore older lines. */
  lineCount(): number;
  /**
   * Resolves with the first line (at index >= after) that contains the substring
   * or satisfies the predicate; rejects on timeout (default 10 s) or exit.
   */
  waitForLog(match: LogMatch, timeoutMs?: number, options?: { after?: number }): Promise<LogLine>;
  /** SIGTERM, wait for exit; SIGKILL after 10 s. Idempotent. */
  stop(): Promise<ExitInfo>;
  /** SIGKILL and wait for exit (a crash, for recovery tests). */
  kill9(): Promise<ExitInfo>;
  /** Settles when the process exits, however it exits. */
  exited: Promise<ExitInfo>;
  readonly running: boolean;
  /** Why the child could not be spawned at all (then `exited` has code and signal null). */
  readonly spawnError: Error | undefined;
}

export interface CommonOptions {
  /** LOG_LEVEL for the child (default "info"). */
  logLevel?: string;
  /** Extra env vars for the child (merged last; `undefined` removes one). */
  env?: Record<string, string | undefined>;
  /** Log file (default `<dataDir>/<service>.log`). */
  logFile?: string | null;
  /** Called with every line as it arrives (e.g. to print it live). */
  onLine?: (line: LogLine, raw: string) => void;
  /**
   * Keep at most this many lines (and their text) in memory; older ones are
   * dropped (line numbers keep counting). Default: all, as a test wants them.
   */
  retainLines?: number;
  /** How long to wait for the "listening" line (default 60 s). */
  startTimeoutMs?: number;
  /** Echo the child's output to this process's stdout too (default: TOLLGATE_TEST_ECHO=1). */
  echo?: boolean;
  /**
   * Arms a deadline: calls `onTimeout` after `ms` unless the returned cancel runs first.
   * Default: setTimeout. A test injects its own to make a deadline pass at a known point.
   */
  scheduleTimeout?: ScheduleTimeout;
}

export type ScheduleTimeout = (onTimeout: () => void, ms: number) => () => void;

const realTimeout: ScheduleTimeout = (onTimeout, ms) => {
  const timer = setTimeout(onTimeout, ms);
  return () => clearTimeout(timer);
};

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Never leave services behind when the test worker dies or forgets a stop().
  process.once("exit", () => {
    for (const child of live) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

export function requireBuilt(mainPath: string): void {
  if (!existsSync(mainPath)) {
    throw new Error(
      `${mainPath} is missing: run \`pnpm build\` (tsc -b) at the repository root first; \`pnpm test\` builds before testing.`,
    );
  }
}

/**
 * The whole environment of a child service: nothing is inherited but PATH, HOME, TZ and
 * NODE_OPTIONS (`pnpm test:node24` loads its native-addon hook through it).
 */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: process.env.HOME ?? tmpdir(),
    NODE_ENV: "production",
  };
  if (process.env.TZ) env.TZ = process.env.TZ;
  if (process.env.NODE_OPTIONS) env.NODE_OPTIONS = process.env.NODE_OPTIONS;
  return env;
}

/** The last `lines` lines of a log, for error messages. */
export function tail(text: string, lines = 60): string {
  const all = text.split("\n");
  return all.slice(Math.max(0, all.length - lines)).join("\n");
}

function matches(match: LogMatch, line: LogLine, raw: string): boolean {
  return typeof match === "string" ? raw.includes(match) : match(line, raw);
}

export interface Spawned {
  proc: ServiceProcess;
  /** Resolves with the first parsed line satisfying `pred`, rejects if the child exits first. */
  waitForListening(pred: (l: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine>;
}

export interface NodeServiceOptions extends CommonOptions {
  /** Names the log file and error messages. */
  label: string;
  /** The script to run with this Node binary. */
  mainPath: string;
  /** The child's entire environment (nothing is inherited). */
  env: Record<string, string>;
  dataDir: string;
  /** The log line that means "started"; its fields are returned. */
  ready: (line: LogLine) => boolean;
}

/**
 * The generic part of startControlPlane/startGateway: spawn a Node script with
 * an explicit env, capture its output, wait for a "ready" log line.
 */
export async function startNodeService(
  opts: NodeServiceOptions,
): Promise<{ proc: ServiceProcess; readyLine: LogLine }> {
  const { proc, waitForListening } = spawnService(opts.label, opts.mainPath, opts.env, opts, opts.dataDir);
  const readyLine = await waitForListening(opts.ready, opts.startTimeoutMs ?? 60_000, `${opts.label} failed to start`);
  return { proc, readyLine };
}

/** Spawns `mainPath`; `waitForListening` stops the child again when it never gets ready. */
export function spawnService(
  label: string,
  mainPath: string,
  env: Record<string, string>,
  common: CommonOptions,
  dataDir: string,
): Spawned {
  if (!existsSync(mainPath)) throw new Error(`${label}: ${mainPath} does not exist`);
  installExitHook();
  mkdirSync(dataDir, { recursive: true });
  const logFile = common.logFile === null ? "" : (common.logFile ?? join(dataDir, `${label}.log`));
  if (logFile) mkdirSync(dirname(logFile), { recursive: true });
  const appendLog = (chunk: string) => {
    if (logFile) appendFileSync(logFile, chunk);
  };
  const retain = common.retainLines ?? Number.POSITIVE_INFINITY;
  const echo = common.echo ?? process.env.TOLLGATE_TEST_ECHO === "1";

  const child = spawn(process.execPath, [mainPath], {
    cwd: repoRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid === undefined) {
    // spawn failed synchronously-ish (ENOENT etc.); the 'error' event carries the reason.
  }
  live.add(child);
  appendLog(`--- ${label} started pid=${child.pid ?? "?"} at ${new Date().toISOString()} ---\n`);

  let text = "";
  /** Lines dropped by `retainLines`: line n is lines[n - dropped]. */
  let dropped = 0;
  const lines: LogLine[] = [];
  const raws: string[] = [];
  const listeners = new Set<() => void>();
  let exitInfo: ExitInfo | undefined;

  const onLine = (raw: string) => {
    let line: LogLine;
    try {
      const parsed: unknown = JSON.parse(raw);
      line = parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as LogLine) : { msg: raw };
    } catch {
      line = { msg: raw };
    }
    lines.push(line);
    raws.push(raw);
    common.onLine?.(line, raw);
    for (const l of [...listeners]) l();
    if (lines.length > retain) {
      const drop = lines.length - retain;
      lines.splice(0, drop);
      raws.splice(0, drop);
      dropped += drop;
      text = raws.join("\n");
    }
  };
  for (const stream of [child.stdout, child.stderr]) {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      text += chunk;
      appendLog(chunk);
      if (echo) process.stdout.write(chunk.replace(/^(?=.)/gm, `[${label}] `));
      partial += chunk;
      let nl: number;
      while ((nl = partial.indexOf("\n")) >= 0) {
        const raw = partial.slice(0, nl).replace(/\r$/, "");
        partial = partial.slice(nl + 1);
        if (raw.trim() !== "") onLine(raw);
      }
    });
    stream.on("end", () => {
      if (partial.trim() !== "") onLine(partial);
      partial = "";
    });
  }

  let spawnError: Error | undefined;
  const exited = new Promise<ExitInfo>((resolveExit) => {
    child.once("error", (err) => {
      spawnError = err;
      if (child.pid === undefined) {
        exitInfo = { code: null, signal: null };
        live.delete(child);
        resolveExit(exitInfo);
        for (const l of [...listeners]) l();
      }
    });
    // 'close' (not 'exit') so stdout/stderr are fully read before we report.
    child.once("close", (code, signal) => {
      exitInfo = { code, signal };
      live.delete(child);
      appendLog(`--- ${label} pid=${child.pid ?? "?"} exited code=${code} signal=${signal} ---\n`);
      resolveExit(exitInfo);
      for (const l of [...listeners]) l();
    });
  });

  const describeExit = () =>
    spawnError && child.pid === undefined
      ? `could not start: ${spawnError.message}`
      : `exited early (code=${exitInfo?.code}, signal=${exitInfo?.signal})`;

  function waitForLog(match: LogMatch, timeoutMs = 10_000, options: { after?: number } = {}): Promise<LogLine> {
    return new Promise((resolveLine, reject) => {
      let index = options.after ?? 0;
      const check = () => {
        for (index = Math.max(index, dropped); index < dropped + lines.length; index++) {
          const at = index - dropped;
          if (matches(match, lines[at]!, raws[at]!)) {
            done();
            resolveLine(lines[at]!);
            return;
          }
        }
        if (exitInfo) {
          done();
          reject(
            new Error(
              `${label} ${describeExit()} before logging ${describeMatch(match)}; log (${logFile}):\n${tail(text)}`,
            ),
          );
        }
      };
      const cancelTimeout = (common.scheduleTimeout ?? realTimeout)(() => {
        done();
        reject(
          new Error(
            `${label} did not log ${describeMatch(match)} within ${timeoutMs} ms; log (${logFile}):\n${tail(text)}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        cancelTimeout();
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });
  }

  let stopping: Promise<ExitInfo> | undefined;
  const proc: ServiceProcess = {
    pid: child.pid ?? -1,
    logFile,
    logs: () => text,
    logLines: () => [...lines],
    lineCount: () => dropped + lines.length,
    waitForLog,
    exited,
    get running() {
      return exitInfo === undefined;
    },
    get spawnError() {
      return spawnError;
    },
    stop: () => {
      if (exitInfo) return Promise.resolve(exitInfo);
      stopping ??= (async () => {
        child.kill("SIGTERM");
        const killTimer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        try {
          return await exited;
        } finally {
          clearTimeout(killTimer);
        }
      })();
      return stopping;
    },
    kill9: () => {
      if (!exitInfo) child.kill("SIGKILL");
      return exited;
    },
  };

  return {
    proc,
    waitForListening: (pred, timeoutMs, what) =>
      waitForLog((l) => pred(l), timeoutMs).catch(async (err: unknown) => {
        // Don't leave a half-started child behind.
        await proc.stop();
        throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      }),
  };
}

function describeMatch(match: LogMatch): string {
  return typeof match === "string" ? JSON.stringify(match) : "a line matching the predicate";
}

/** `base` with `extra` applied: a value sets, `undefined` removes. */
export function mergeEnv(
  base: Record<string, string>,
  extra: Record<string, string | undefined> | undefined,
): Record<string, string> {
  const env = { ...base };
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Stops every service process still running (e.g. in a global afterAll). */
export async function stopAllServices(): Promise<void> {
  await Promise.all(
    [...live].map(
      (child) =>
        new Promise<void>((done) => {
          if (child.exitCode !== null || child.signalCode !== null) return done();
          child.once("close", () => done());
          child.kill("SIGTERM");
          setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
        }),
    ),
  );
}
