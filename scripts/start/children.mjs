// The two services as children of this script: spawning, log echo, a hint on
// failure, and stopping both on exit or Ctrl-C.
import { spawnService } from "@tollgate/testkit";
import { c, endProgress, info, println, prettyLine } from "./output.mjs";
import { dataDir, gatewayTokenFile, masterKeyFile, rel } from "./paths.mjs";
import { join } from "node:path";

/** Fails with what to do next; stops whatever was started. */
export async function fail(message, hint) {
  endProgress();
  println();
  println(`${c.red(c.bold("✗"))} ${c.red(message)}`);
  if (hint) for (const line of hint.split("\n")) println(`  ${c.yellow("→")} ${line}`);
  await stopChildren();
  process.exit(1);
}

const children = [];
let shuttingDown = false;

/**
 * Spawns a service through testkit's runner, prints its output live with a
 * colored prefix, and keeps the last lines for a post-mortem.
 */
export function startChild(name, color, mainPath, env) {
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
export function waitForLine(child, pred, timeoutMs) {
  return child.proc
    .waitForLog((l) => pred(l), timeoutMs)
    .catch(() => {
      throw new Error(child.proc.running ? "timeout" : "exited");
    });
}

export const portVars = new Map(); // port number → the env var that sets it
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

export async function stopChildren() {
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

export const isShuttingDown = () => shuttingDown;

/** Stops both services on a signal (a second one forces), and never leaves them behind. */
export function installSignalHandlers() {
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
}
