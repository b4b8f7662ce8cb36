#!/usr/bin/env node
// The newcomer's stack (`pnpm start`, after `tsc -b`): a control plane on
// embedded PGlite plus one attached gateway, with what to try printed.
// Everything it keeps lives in <repo>/.data/ (delete it to start over).
import { randomInt } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnService } from "@tollgate/testkit";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dataDir = join(root, ".data");
const masterKeyFile = join(dataDir, "master-key");
const gatewayTokenFile = join(dataDir, "gateway-token.json");
const controlPlaneMain = join(root, "control-plane", "dist", "main.js");
const gatewayMain = join(root, "gateway", "dist", "main.js");
const rel = (p) => relative(process.cwd(), p) || ".";

// ---------------------------------------------------------------- output ---

const useColor = process.stdout.isTTY && !process.env.NO_COLOR && process.env.TERM !== "dumb";
const paint = (code) => (s) => (useColor ? `\x1b[${code}m${s}\x1b[0m` : String(s));
const c = {
  bold: paint(1),
  dim: paint(2),
  red: paint(31),
  green: paint(32),
  yellow: paint(33),
  blue: paint(34),
  magenta: paint(35),
  cyan: paint(36),
  gray: paint(90),
};

let progressText = "";
function clearProgress() {
  if (progressText && process.stdout.isTTY) process.stdout.write("\r\x1b[K");
}
function drawProgress() {
  if (progressText && process.stdout.isTTY) process.stdout.write(progressText);
}
/** Prints a line without tearing the live progress line, if any. */
function println(s = "") {
  clearProgress();
  process.stdout.write(`${s}\n`);
  drawProgress();
}
function setProgress(text) {
  if (process.stdout.isTTY) {
    clearProgress();
    progressText = text;
    drawProgress();
  } else if (text) {
    progressText = text;
  }
}
function endProgress(finalLine) {
  clearProgress();
  progressText = "";
  if (finalLine) process.stdout.write(`${finalLine}\n`);
}
const info = (s) => println(`${c.cyan("tollgate")} ${s}`);
const warn = (s) => println(`${c.yellow("tollgate")} ${c.yellow(s)}`);

/** Fails with what to do next; stops whatever was started. */
async function fail(message, hint) {
  endProgress();
  println();
  println(`${c.red(c.bold("✗"))} ${c.red(message)}`);
  if (hint) for (const line of hint.split("\n")) println(`  ${c.yellow("→")} ${line}`);
  await stopChildren();
  process.exit(1);
}

// ------------------------------------------------------------ pino lines ---

const LEVELS = {
  10: ["TRACE", c.gray],
  20: ["DEBUG", c.gray],
  30: ["INFO ", c.green],
  40: ["WARN ", c.yellow],
  50: ["ERROR", c.red],
  60: ["FATAL", c.red],
};
const SKIP = new Set(["level", "time", "pid", "hostname", "name", "service", "msg", "v", "err", "error"]);

function formatValue(v) {
  if (typeof v === "string") return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  const s = JSON.stringify(v);
  return s && s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/** One pino JSON line → `HH:MM:SS LEVEL msg k=v ...` (+ an error's stack); other text as is. */
function prettyLine(raw) {
  let o;
  try {
    o = JSON.parse(raw);
  } catch {
    return [raw];
  }
  if (!o || typeof o !== "object" || Array.isArray(o)) return [raw];
  const [label, color] = LEVELS[o.level] ?? [String(o.level ?? "").padEnd(5), (s) => s];
  const time =
    typeof o.time === "string"
      ? o.time.slice(11, 19)
      : typeof o.time === "number"
        ? new Date(o.time).toISOString().slice(11, 19)
        : "";
  const fields = Object.entries(o)
    .filter(([k]) => !SKIP.has(k))
    .slice(0, 8)
    .map(([k, v]) => `${c.gray(`${k}=`)}${formatValue(v)}`);
  const err = o.err ?? o.error;
  const errMsg = err && typeof err === "object" ? err.message : err;
  const head = [c.gray(time), color(label), o.msg ?? "", errMsg ? c.red(String(errMsg)) : "", ...fields]
    .filter(Boolean)
    .join(" ");
  const out = [head];
  if (err && typeof err === "object" && typeof err.stack === "string" && o.level >= 50) {
    for (const l of err.stack.split("\n").slice(1, 8)) out.push(c.gray(`    ${l.trim()}`));
  }
  return out;
}

// -------------------------------------------------------------- children ---

const children = [];
let shuttingDown = false;

/**
 * Spawns a service through testkit's runner, prints its output live with a
 * colored prefix, and keeps the last lines for a post-mortem.
 */
function startChild(name, color, mainPath, env) {
  const prefix = color(`[${name}]`.padEnd(16));
  const child = { name, lastLines: [], exit: undefined };
  const { proc } = spawnService(
    name,
    mainPath,
    env,
    {
      // The terminal is the log here; a stack left running must not grow a file or the heap.
      logFile: null,
      retainLines: 2_000,
      echo: false,
      onLine: (_line, raw) => {
        for (const l of prettyLine(raw)) {
          child.lastLines.push(l);
          println(`${prefix} ${l}`);
        }
        if (child.lastLines.length > 40) child.lastLines.splice(0, child.lastLines.length - 40);
      },
    },
    dataDir,
  );
  child.proc = proc;
  child.exited = proc.exited.then((exit) => {
    child.exit = exit;
    return exit;
  });
  child.exited.then((exit) => onChildExit(child, exit));
  children.push(child);
  return child;
}

/** Resolves with the first parsed log line matching `pred`; rejects with "exited" or "timeout". */
function waitForLine(child, pred, timeoutMs) {
  return child.proc
    .waitForLog((l) => pred(l), timeoutMs)
    .catch(() => {
      throw new Error(child.proc.running ? "timeout" : "exited");
    });
}

const portVars = new Map(); // port number → the env var that sets it
function hintFor(child) {
  const text = child.proc.logs();
  const inUse = /EADDRINUSE[^\n]*?:(\d+)/.exec(text);
  if (inUse) {
    const port = Number(inUse[1]);
    const v = portVars.get(port);
    return `port ${port} is already in use (another Tollgate still running? \`lsof -i :${port}\`).${v ? `\nPick another port: ${v}=<port> pnpm start` : ""}`;
  }
  if (/EACCES/.test(text))
    return "permission denied binding a port or writing .data/: check ports >= 1024 and that .data/ is yours.";
  if (/PROXY_MASTER_KEY/.test(text))
    return `fix PROXY_MASTER_KEY (at least 32 characters), or unset it to use the generated one in ${rel(masterKeyFile)}.`;
  if (/DATABASE_URL|ECONNREFUSED[^\n]*5432|password authentication/.test(text))
    return "check DATABASE_URL (is Postgres running and reachable?), or unset it to use embedded PGlite.";
  if (child.name === "gateway" && /unauthenticated|gateway token|GATEWAY_TOKEN/i.test(text))
    return `the control plane refused the gateway token: delete ${rel(gatewayTokenFile)} and run \`pnpm start\` again.`;
  if (/PGlite|pglite/.test(text) && /corrupt|lock|Aborted/i.test(text))
    return `the embedded database under ${rel(join(dataDir, "control-plane"))} may be damaged or in use by another process; stop other instances, or move it away to start fresh.`;
  return "see the log lines above; fix the cause and run `pnpm start` again.";
}

function onChildExit(child, exit) {
  if (shuttingDown) return;
  shuttingDown = true;
  endProgress();
  const how = child.proc.spawnError
    ? `could not start: ${child.proc.spawnError.message}`
    : `exited unexpectedly (code ${exit.code}${exit.signal ? `, signal ${exit.signal}` : ""})`;
  println();
  println(c.red(c.bold(`✗ ${child.name} ${how}. Last log lines:`)));
  for (const l of child.lastLines.slice(-20)) println(`  ${l}`);
  const hint = hintFor(child);
  for (const line of hint.split("\n")) println(`  ${c.yellow("→")} ${line}`);
  void stopChildren().then(() => process.exit(1));
}

async function stopChildren() {
  shuttingDown = true;
  // Gateway first, so it does not log reconnect noise about a vanished control plane.
  for (const child of [...children].reverse()) {
    if (child.exit) continue;
    // proc.stop() sends SIGTERM, then SIGKILL after 10 s.
    const timer = setTimeout(() => {
      if (!child.exit) println(c.yellow(`${child.name} did not stop within 10 s; killing it`));
    }, 10_000);
    await child.proc.stop();
    clearTimeout(timer);
  }
}

let interrupts = 0;
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    interrupts++;
    if (interrupts > 1) {
      println(c.yellow("forcing exit"));
      for (const child of children) if (!child.exit) void child.proc.kill9();
      process.exit(130);
    }
    endProgress();
    println();
    info(`${sig === "SIGINT" ? "Ctrl-C" : sig}: stopping the gateway and the control plane (again to force)…`);
    void stopChildren().then(() => {
      info("stopped. Data kept in .data/ (delete it to start over).");
      process.exit(0);
    });
  });
}
// Never leave services behind if this script dies on an exception.
process.on("exit", () => {
  for (const child of children) if (!child.exit) void child.proc.kill9();
});

// --------------------------------------------------------------- helpers ---

function envPort(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    return fail(
      `${name} must be a TCP port between 0 and 65535, got ${JSON.stringify(v)}`,
      `unset ${name} to use the default ${fallback}`,
    );
  }
  return n;
}

/** Is the port free to listen on (any address)? 0 always is. */
function portFree(port) {
  if (port === 0) return Promise.resolve(true);
  return new Promise((res) => {
    const srv = createServer();
    srv.once("error", (err) => res(err.code !== "EADDRINUSE"));
    srv.listen({ port, exclusive: true }, () => srv.close(() => res(true)));
  });
}

function base62(n) {
  const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  let s = "";
  for (let i = 0; i < n; i++) s += alphabet[randomInt(62)];
  return s;
}

function writeSecret(file, content) {
  writeFileSync(file, content, { mode: 0o600 });
  chmodSync(file, 0o600); // the mode option does not apply when the file already existed
}

async function api(baseUrl, masterKey, method, path, body) {
  let res;
  try {
    res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${masterKey}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    return fail(
      `could not reach the control plane at ${baseUrl}${path}: ${err.message}`,
      "see the [control-plane] log lines above",
    );
  }
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  if (res.status === 401 || res.status === 403) {
    return fail(
      `the control plane rejected the master key (${method} ${path} → ${res.status})`,
      `the key this script used differs from the one the control plane runs with; check PROXY_MASTER_KEY and ${rel(masterKeyFile)}`,
    );
  }
  return { status: res.status, body: json };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ main ---

async function main() {
  const [major, minor] = process.versions.node.split(".").map(Number);
  if (major < 20 || (major === 20 && minor < 19))
    warn(`Node ${process.versions.node} is older than the supported 20.19; things may break.`);

  for (const [what, file] of [
    ["control plane", controlPlaneMain],
    ["gateway", gatewayMain],
  ]) {
    if (!existsSync(file)) {
      await fail(
        `the ${what} is not built (${rel(file)} is missing)`,
        "run `pnpm install` and then `pnpm start` (it runs `tsc -b` first), or `pnpm build`",
      );
    }
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });

  // Master key: from the env, else the persisted one, else a new one.
  let masterKey = process.env.PROXY_MASTER_KEY;
  if (masterKey) {
    if (masterKey.length < 32)
      await fail(
        "PROXY_MASTER_KEY must be at least 32 characters",
        `unset it to use a generated key (kept in ${rel(masterKeyFile)})`,
      );
    info(`using PROXY_MASTER_KEY from the environment`);
  } else if (existsSync(masterKeyFile)) {
    masterKey = readFileSync(masterKeyFile, "utf8").trim();
    if (masterKey.length < 32)
      await fail(
        `${rel(masterKeyFile)} holds a key shorter than 32 characters`,
        "delete that file to generate a new one, or set PROXY_MASTER_KEY",
      );
    info(`using the master key saved in ${rel(masterKeyFile)}`);
  } else {
    masterKey = `sk-tollgate-${base62(40)}`;
    writeSecret(masterKeyFile, `${masterKey}\n`);
    info(`generated a master key and saved it to ${rel(masterKeyFile)} (mode 0600); later starts reuse it`);
  }

  const cpPort = await envPort("PORT", 8000);
  const grpcPort = await envPort("GRPC_PORT", 50051);
  const gwPort = await envPort("GATEWAY_PORT", 8080);
  const gwStatusPort = await envPort("GATEWAY_STATUS_PORT", 8081);
  const ports = [
    ["PORT", cpPort, "control plane admin API"],
    ["GRPC_PORT", grpcPort, "control plane gRPC"],
    ["GATEWAY_PORT", gwPort, "gateway"],
    ["GATEWAY_STATUS_PORT", gwStatusPort, "gateway status/metrics"],
  ];
  const seen = new Map();
  for (const [name, port, what] of ports) {
    if (port !== 0 && seen.has(port))
      await fail(
        `${name} and ${seen.get(port)} are both ${port}`,
        `give each its own port, e.g. ${name}=<port> pnpm start`,
      );
    seen.set(port, name);
    portVars.set(port, name);
    if (!(await portFree(port))) {
      await fail(
        `port ${port} (${what}) is already in use`,
        `another Tollgate may still be running (\`lsof -i :${port}\`);\nor pick another port: ${name}=<port> pnpm start`,
      );
    }
  }

  // Service env: only what each needs (plus PATH/HOME etc.), never the other's PORT.
  const serviceVars =
    /^(PORT|GRPC_PORT|STATUS_PORT|DATA_DIR|HOST|LOG_LEVEL|PROXY_MASTER_KEY|DATABASE_\w+|CONTROL_PLANE_URL|GATEWAY_\w+|OPENAI_\w+|ANTHROPIC_\w+)$/;
  const baseEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k, v]) => v !== undefined && !serviceVars.test(k)),
  );
  const pass = (...names) => Object.fromEntries(names.filter((n) => process.env[n]).map((n) => [n, process.env[n]]));

  // ---- control plane
  const usingPostgres = Boolean(process.env.DATABASE_URL);
  info(
    `starting the control plane (${usingPostgres ? "Postgres from DATABASE_URL" : `embedded PGlite in ${rel(join(dataDir, "control-plane"))}`})…`,
  );
  const cp = startChild("control-plane", c.magenta, controlPlaneMain, {
    ...baseEnv,
    ...pass("DATABASE_URL", "DATABASE_SCHEMA", "HOST", "LOG_LEVEL"),
    PROXY_MASTER_KEY: masterKey,
    DATA_DIR: join(dataDir, "control-plane"),
    PORT: String(cpPort),
    GRPC_PORT: String(grpcPort),
  });
  let cpLine;
  try {
    cpLine = await waitForLine(cp, (l) => l.msg === "control plane listening" && typeof l.port === "number", 120_000);
  } catch (err) {
    if (err.message === "exited") return; // onChildExit reports it
    return fail("the control plane did not start listening within 120 s", "see the [control-plane] log lines above");
  }
  const adminPort = cpLine.port;
  const grpcActual = typeof cpLine.grpcPort === "number" ? cpLine.grpcPort : grpcPort;
  const adminUrl = `http://127.0.0.1:${adminPort}`;

  // ---- gateway token: reuse the saved one while the control plane still knows it
  let gwToken;
  if (existsSync(gatewayTokenFile)) {
    let saved;
    try {
      saved = JSON.parse(readFileSync(gatewayTokenFile, "utf8"));
    } catch {
      warn(`${rel(gatewayTokenFile)} is not valid JSON; creating a new gateway token`);
    }
    if (saved?.id && saved?.token) {
      let found = false;
      let cursor;
      const seenCursors = new Set();
      for (let page = 0; page < 50 && !found; page++) {
        const r = await api(
          adminUrl,
          masterKey,
          "GET",
          `/internal/gateway-tokens${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ""}`,
        );
        if (r.status !== 200)
          await fail(
            `listing gateway tokens failed: ${r.status} ${JSON.stringify(r.body)}`,
            "see the [control-plane] log lines above",
          );
        found = (r.body?.data ?? []).some((t) => t.id === saved.id);
        cursor = r.body?.next_cursor;
        if (!cursor || seenCursors.has(cursor)) break;
        seenCursors.add(cursor);
      }
      if (found) {
        gwToken = saved;
        info(`reusing gateway token ${saved.id} (${saved.token_prefix ?? "saved"}) from ${rel(gatewayTokenFile)}`);
      } else {
        warn(
          `the saved gateway token ${saved.id} is no longer known to the control plane (revoked, or a different database); creating a new one`,
        );
      }
    }
  }
  if (!gwToken) {
    const r = await api(adminUrl, masterKey, "POST", "/internal/gateway-tokens", { name: "local" });
    if (r.status !== 200 && r.status !== 201)
      await fail(
        `creating a gateway token failed: ${r.status} ${JSON.stringify(r.body)}`,
        "see the [control-plane] log lines above",
      );
    if (!r.body?.token || !r.body?.id)
      await fail(`the control plane answered a gateway token without id/token: ${JSON.stringify(r.body)}`);
    gwToken = {
      id: r.body.id,
      name: r.body.name,
      token: r.body.token,
      token_prefix: r.body.token_prefix,
      created_at: r.body.created_at,
    };
    writeSecret(gatewayTokenFile, `${JSON.stringify(gwToken, null, 2)}\n`);
    info(`created gateway token ${gwToken.id} and saved it to ${rel(gatewayTokenFile)} (mode 0600)`);
  }

  // ---- gateway
  const useOpenAI = Boolean(process.env.OPENAI_BASE_URL || process.env.OPENAI_API_KEY);
  const provider = useOpenAI
    ? `OpenAI (${process.env.OPENAI_BASE_URL || "https://api.openai.com/v1"})`
    : "built-in mock provider (set OPENAI_API_KEY to call OpenAI)";
  info(
    `starting the gateway (${useOpenAI ? "OpenAI upstream" : "mock provider"}, cache in ${rel(join(dataDir, "gateway"))})…`,
  );
  const gw = startChild("gateway", c.blue, gatewayMain, {
    ...baseEnv,
    ...pass("OPENAI_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "HOST", "LOG_LEVEL"),
    CONTROL_PLANE_URL: `http://127.0.0.1:${grpcActual}`,
    GATEWAY_TOKEN: gwToken.token,
    GATEWAY_NAME: process.env.GATEWAY_NAME || "local",
    DATA_DIR: join(dataDir, "gateway"),
    PORT: String(gwPort),
    STATUS_PORT: String(gwStatusPort),
  });
  let gwLine;
  try {
    gwLine = await waitForLine(gw, (l) => l.msg === "gateway listening" && typeof l.port === "number", 60_000);
  } catch (err) {
    if (err.message === "exited") return;
    return fail("the gateway did not start listening within 60 s", "see the [gateway] log lines above");
  }
  const gatewayPort = gwLine.port;
  const statusPort = typeof gwLine.statusPort === "number" ? gwLine.statusPort : gwStatusPort;

  // ---- wait for /readyz
  const started = Date.now();
  const spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
  let last = "no answer yet";
  let lastPrinted = 0;
  for (let i = 0; ; i++) {
    if (shuttingDown) return;
    try {
      const res = await fetch(`http://127.0.0.1:${statusPort}/readyz`, { signal: AbortSignal.timeout(2_000) });
      const body = await res.text();
      if (res.status === 200) break;
      last = `${res.status} ${body.slice(0, 160)}`;
    } catch (err) {
      last = err.cause?.code ?? err.message;
    }
    const secs = Math.floor((Date.now() - started) / 1000);
    if (secs >= 60) {
      return fail(
        `the gateway is not ready after 60 s (last /readyz: ${last})`,
        "it has not received keys from the control plane; see the [gateway] and [control-plane] log lines above",
      );
    }
    if (process.stdout.isTTY)
      setProgress(
        `${c.cyan(spinner[i % spinner.length])} waiting for the gateway to sync keys from the control plane… ${secs}s ${c.gray(`(/readyz: ${last})`)}`,
      );
    else if (secs - lastPrinted >= 5) {
      lastPrinted = secs;
      println(`… waiting for the gateway to be ready (${secs}s, /readyz: ${last})`);
    }
    await sleep(200);
  }
  endProgress(`${c.green("✓")} gateway ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);

  // ---- banner
  const cpHost = `localhost:${adminPort}`;
  const gwHost = `localhost:${gatewayPort}`;
  const b = (s) => c.bold(s);
  const cmd = (s) => c.cyan(s);
  const note = (s) => c.gray(s);
  const lines = [
    "",
    c.green(b("Tollgate is running")),
    "",
    `  ${b("Admin API")}      http://${cpHost}   ${note("(control plane, Bearer master key)")}`,
    `  ${b("gRPC sync")}      http://localhost:${grpcActual}`,
    `  ${b("Gateway")}        http://${gwHost}/v1   ${note("(OpenAI-compatible)")}`,
    `  ${b("Metrics")}        http://localhost:${statusPort}/metrics   ${note(`(/readyz, /healthz on the same port)`)}`,
    `  ${b("Provider")}       ${provider}`,
    `  ${b("Master key")}     ${masterKey}`,
    `  ${b("Data")}           ${rel(dataDir)}/ ${note("(delete it to start over)")}`,
    "",
    b("Try it") + note(" (copy each id from the previous answer):"),
    "",
    cmd(`  export MASTER_KEY='${masterKey}'`),
    "",
    note("  # 1. a team"),
    cmd(`  curl -s http://${cpHost}/internal/teams -H "Authorization: Bearer $MASTER_KEY" \\`),
    cmd(`    -H 'Content-Type: application/json' -d '{"name":"demo","tpm_limit":100000}'`),
    note('  #    → {"id":"team_…"}   then: export TEAM_ID=team_…'),
    "",
    note("  # 2. a user in that team"),
    cmd(`  curl -s http://${cpHost}/internal/users -H "Authorization: Bearer $MASTER_KEY" \\`),
    cmd(`    -H 'Content-Type: application/json' -d '{"external_id":"alice","team_id":"'"$TEAM_ID"'"}'`),
    note('  #    → {"id":"user_…"}   then: export USER_ID=user_…'),
    "",
    note("  # 3. an API key for that user (the full key is shown only once)"),
    cmd(`  curl -s http://${cpHost}/internal/api-keys -H "Authorization: Bearer $MASTER_KEY" \\`),
    cmd(`    -H 'Content-Type: application/json' -d '{"name":"alice-laptop","user_id":"'"$USER_ID"'"}'`),
    note('  #    → {"key":"llmp_…"}   then: export TOLLGATE_KEY=llmp_…'),
    "",
    note("  # 4. a chat completion through the gateway"),
    cmd(`  curl -s http://${gwHost}/v1/chat/completions -H "Authorization: Bearer $TOLLGATE_KEY" \\`),
    cmd(
      `    -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}'`,
    ),
    "",
    note("  # 5. what the gateway measured"),
    cmd(`  curl -s http://localhost:${statusPort}/metrics`),
    "",
    note("  OpenAI SDKs work too: baseURL ") + `http://${gwHost}/v1` + note(", apiKey $TOLLGATE_KEY."),
    note("  Ctrl-C stops both services."),
    "",
  ];
  for (const l of lines) println(l);
}

main().catch((err) => fail(`unexpected error: ${err?.stack ?? err}`, "please report this with the output above"));
