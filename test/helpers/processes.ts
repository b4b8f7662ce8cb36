import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file lives in `<root>/test/helpers/`). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const controlPlaneMain = join(repoRoot, "control-plane", "dist", "main.js");
export const gatewayMain = join(repoRoot, "gateway", "dist", "main.js");

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Said in the timeout error. */
  message?: string;
}

/**
 * Polls `fn` until it returns a truthy value (which is returned) or time runs
 * out. A throw counts as "not yet"; the last one is quoted in the timeout error.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 50, message }: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let lastValue: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      lastValue = v;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError !== undefined ? `last error: ${String(lastError)}` : `last value: ${JSON.stringify(lastValue)}`;
      throw new Error(`waitFor timed out after ${timeoutMs} ms${message ? ` (${message})` : ""}; ${why}`);
    }
    await sleep(intervalMs);
  }
}

/** A TCP port free on 127.0.0.1 right now (a race remains; prefer port 0 where possible). */
export function getFreePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

export interface TempDir {
  path: string;
  /** Removes the directory (kept when TOLLGATE_KEEP_TMP=1, for post-mortems). */
  cleanup(): Promise<void>;
}

/** A fresh directory under the OS temp dir, e.g. `createTempDir("sync-")`. */
export async function createTempDir(prefix = "tollgate-"): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix.startsWith("tollgate") ? prefix : `tollgate-${prefix}`));
  return {
    path,
    cleanup: async () => {
      if (process.env.TOLLGATE_KEEP_TMP === "1") {
        console.log(`keeping ${path} (TOLLGATE_KEEP_TMP=1)`);
        return;
      }
      await rm(path, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    },
  };
}

export interface HttpResult<T = any> {
  status: number;
  /** Parsed JSON, the raw text when not JSON, null when empty. */
  body: T;
  headers: Headers;
}

async function readBody(res: Response): Promise<unknown> {
  const text = await res.text();
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export interface AdminClient {
  get<T = any>(path: string): Promise<HttpResult<T>>;
  post<T = any>(path: string, body?: unknown): Promise<HttpResult<T>>;
  patch<T = any>(path: string, body?: unknown): Promise<HttpResult<T>>;
  put<T = any>(path: string, body?: unknown): Promise<HttpResult<T>>;
  delete<T = any>(path: string): Promise<HttpResult<T>>;
  /** Any method, with optional extra headers (e.g. a different Authorization). */
  request<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpResult<T>>;
}

/** JSON client for the control plane's admin API, authenticated with the master key. */
export function adminClient(baseUrl: string, masterKey: string): AdminClient {
  const base = baseUrl.replace(/\/+$/, "");
  async function request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpResult<T>> {
    const res = await fetch(`${base}${path.startsWith("/") ? path : `/${path}`}`, {
      method,
      headers: {
        authorization: `Bearer ${masterKey}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await readBody(res)) as T, headers: res.headers };
  }
  return {
    get: (path) => request("GET", path),
    post: (path, body) => request("POST", path, body ?? {}),
    patch: (path, body) => request("PATCH", path, body ?? {}),
    put: (path, body) => request("PUT", path, body ?? {}),
    delete: (path) => request("DELETE", path),
    request,
  };
}

// ---------------------------------------------------------------------------
// Service processes
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
  /** Where stdout+stderr are appended (across restarts that reuse it). */
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
}

export interface ControlPlaneProcess extends ServiceProcess {
  port: number;
  grpcPort: number;
  /** Admin API origin, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** What a gateway's CONTROL_PLANE_URL wants, e.g. `http://127.0.0.1:41235`. */
  grpcUrl: string;
  masterKey: string;
  /** An `adminClient` bound to this process. */
  admin: AdminClient;
}

export interface GatewayProcess extends ServiceProcess {
  port: number;
  statusPort: number;
  /** Client API origin, e.g. `http://127.0.0.1:41236`. */
  url: string;
  /** What an OpenAI client's baseURL wants: `${url}/v1`. */
  baseUrl: string;
  /** Status server origin (`/readyz`, `/healthz`, `/metrics`). */
  statusUrl: string;
  /** GET /readyz as {status, body}. */
  readyz(): Promise<HttpResult>;
  /** Polls /readyz until 200; returns its body. */
  waitForReady(timeoutMs?: number): Promise<any>;
  /** GET /metrics as text. */
  metrics(): Promise<string>;
}

interface CommonOptions {
  /** LOG_LEVEL for the child (default "info"). */
  logLevel?: string;
  /** Extra env vars for the child (merged last; `undefined` removes one). */
  env?: Record<string, string | undefined>;
  /** Log file (default `<dataDir>/<service>.log`). */
  logFile?: string;
  /** How long to wait for the "listening" line (default 60 s). */
  startTimeoutMs?: number;
  /** Echo the child's output to this process's stdout too (default: TOLLGATE_TEST_ECHO=1). */
  echo?: boolean;
}

export interface ControlPlaneOptions extends CommonOptions {
  masterKey: string;
  dataDir: string;
  databaseUrl?: string;
  databaseSchema?: string;
  /** 0 (default) lets the OS pick. Fix it to keep it across a restart. */
  port?: number;
  /** 0 (default) lets the OS pick. Fix it so a restarted control plane keeps its gRPC port. */
  grpcPort?: number;
}

export interface GatewayOptions extends CommonOptions {
  controlPlaneUrl: string;
  token: string;
  name: string;
  dataDir: string;
  /** Without both OPENAI_* the gateway uses its built-in mock provider. */
  openaiBaseUrl?: string;
  openaiApiKey?: string;
  port?: number;
  statusPort?: number;
}

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

function requireBuilt(mainPath: string): void {
  if (!existsSync(mainPath)) {
    throw new Error(
      `${mainPath} is missing: run \`pnpm build\` (tsc -b) at the repository root first; \`pnpm test\` builds before testing.`,
    );
  }
}

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: process.env.HOME ?? tmpdir(),
    NODE_ENV: "production",
  };
  if (process.env.TZ) env.TZ = process.env.TZ;
  return env;
}

function tail(text: string, lines = 60): string {
  const all = text.split("\n");
  return all.slice(Math.max(0, all.length - lines)).join("\n");
}

function matches(match: LogMatch, line: LogLine, raw: string): boolean {
  return typeof match === "string" ? raw.includes(match) : match(line, raw);
}

interface Spawned {
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
export async function startNodeService(opts: NodeServiceOptions): Promise<{ proc: ServiceProcess; readyLine: LogLine }> {
  const { proc, waitForListening } = spawnService(opts.label, opts.mainPath, opts.env, opts, opts.dataDir);
  const readyLine = await waitForListening(opts.ready, opts.startTimeoutMs ?? 60_000, `${opts.label} failed to start`);
  return { proc, readyLine };
}

function spawnService(label: string, mainPath: string, env: Record<string, string>, common: CommonOptions, dataDir: string): Spawned {
  if (!existsSync(mainPath)) throw new Error(`${label}: ${mainPath} does not exist`);
  installExitHook();
  mkdirSync(dataDir, { recursive: true });
  const logFile = common.logFile ?? join(dataDir, `${label}.log`);
  mkdirSync(dirname(logFile), { recursive: true });
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
  appendFileSync(logFile, `--- ${label} started pid=${child.pid ?? "?"} at ${new Date().toISOString()} ---\n`);

  let text = "";
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
    for (const l of [...listeners]) l();
  };
  for (const stream of [child.stdout, child.stderr]) {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      text += chunk;
      appendFileSync(logFile, chunk);
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
      appendFileSync(logFile, `--- ${label} pid=${child.pid ?? "?"} exited code=${code} signal=${signal} ---\n`);
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
        for (; index < lines.length; index++) {
          if (matches(match, lines[index]!, raws[index]!)) {
            done();
            resolveLine(lines[index]!);
            return;
          }
        }
        if (exitInfo) {
          done();
          reject(new Error(`${label} ${describeExit()} before logging ${describeMatch(match)}; log (${logFile}):\n${tail(text)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${label} did not log ${describeMatch(match)} within ${timeoutMs} ms; log (${logFile}):\n${tail(text)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
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
    lineCount: () => lines.length,
    waitForLog,
    exited,
    get running() {
      return exitInfo === undefined;
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

function mergeEnv(base: Record<string, string>, extra: Record<string, string | undefined> | undefined): Record<string, string> {
  const env = { ...base };
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/**
 * Spawns `node control-plane/dist/main.js` with an explicit env and waits for
 * its `"control plane listening"` line.
 */
export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlaneProcess> {
  requireBuilt(controlPlaneMain);
  const env = mergeEnv(
    {
      ...baseEnv(),
      PROXY_MASTER_KEY: opts.masterKey,
      DATA_DIR: opts.dataDir,
      HOST: "127.0.0.1",
      PORT: String(opts.port ?? 0),
      GRPC_PORT: String(opts.grpcPort ?? 0),
      LOG_LEVEL: opts.logLevel ?? "info",
      ...(opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl } : {}),
      ...(opts.databaseSchema ? { DATABASE_SCHEMA: opts.databaseSchema } : {}),
    },
    opts.env,
  );
  const { proc, waitForListening } = spawnService("control-plane", controlPlaneMain, env, opts, opts.dataDir);
  const line = await waitForListening(
    (l) => l.msg === "control plane listening" && typeof l.port === "number" && typeof l.grpcPort === "number",
    opts.startTimeoutMs ?? 60_000,
    "control plane failed to start",
  );
  const port = line.port as number;
  const grpcPort = line.grpcPort as number;
  const url = `http://127.0.0.1:${port}`;
  return Object.assign(proc, {
    port,
    grpcPort,
    url,
    grpcUrl: `http://127.0.0.1:${grpcPort}`,
    masterKey: opts.masterKey,
    admin: adminClient(url, opts.masterKey),
  });
}

/**
 * Spawns `node gateway/dist/main.js` with an explicit env and waits for its
 * `"gateway listening"` line. It may not be ready yet: see `waitForReady()`.
 */
export async function startGateway(opts: GatewayOptions): Promise<GatewayProcess> {
  requireBuilt(gatewayMain);
  const env = mergeEnv(
    {
      ...baseEnv(),
      CONTROL_PLANE_URL: opts.controlPlaneUrl,
      GATEWAY_TOKEN: opts.token,
      GATEWAY_NAME: opts.name,
      DATA_DIR: opts.dataDir,
      HOST: "127.0.0.1",
      PORT: String(opts.port ?? 0),
      STATUS_PORT: String(opts.statusPort ?? 0),
      LOG_LEVEL: opts.logLevel ?? "info",
      // Every test client is 127.0.0.1 and sends invalid keys on purpose; blocking has its own tests.
      BRUTE_FORCE_MAX_FAILED_ATTEMPTS: "100000",
      ...(opts.openaiBaseUrl ? { OPENAI_BASE_URL: opts.openaiBaseUrl } : {}),
      ...(opts.openaiApiKey ? { OPENAI_API_KEY: opts.openaiApiKey } : {}),
    },
    opts.env,
  );
  const label = `gateway-${opts.name}`.replace(/[^A-Za-z0-9._-]/g, "_");
  const { proc, waitForListening } = spawnService(label, gatewayMain, env, opts, opts.dataDir);
  const line = await waitForListening(
    (l) => l.msg === "gateway listening" && typeof l.port === "number" && typeof l.statusPort === "number",
    opts.startTimeoutMs ?? 60_000,
    `gateway ${opts.name} failed to start`,
  );
  const port = line.port as number;
  const statusPort = line.statusPort as number;
  const url = `http://127.0.0.1:${port}`;
  const statusUrl = `http://127.0.0.1:${statusPort}`;
  const readyz = async (): Promise<HttpResult> => {
    const res = await fetch(`${statusUrl}/readyz`);
    return { status: res.status, body: await readBody(res), headers: res.headers };
  };
  return Object.assign(proc, {
    port,
    statusPort,
    url,
    baseUrl: `${url}/v1`,
    statusUrl,
    readyz,
    waitForReady: async (timeoutMs = 30_000) => {
      let last: HttpResult | undefined;
      try {
        const r = await waitFor(
          async () => {
            if (!proc.running) throw new Error("gateway exited");
            last = await readyz();
            return last.status === 200 ? last : undefined;
          },
          { timeoutMs, intervalMs: 50 },
        );
        return r.body;
      } catch (err) {
        throw new Error(
          `gateway ${opts.name} not ready within ${timeoutMs} ms (last /readyz: ${last ? `${last.status} ${JSON.stringify(last.body)}` : "none"}; ${String(err)}); log (${proc.logFile}):\n${tail(proc.logs())}`,
        );
      }
    },
    metrics: async () => (await fetch(`${statusUrl}/metrics`)).text(),
  });
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

/** Status of one chat completion through a gateway with `apiKey` (the body is read and dropped). */
export async function chatStatus(gw: GatewayProcess, apiKey: string, model = "gpt-4o-mini"): Promise<number> {
  const res = await fetch(`${gw.baseUrl}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "status?" }] }),
  });
  await res.arrayBuffer();
  return res.status;
}
