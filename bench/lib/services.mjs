// The services a bench starts as child processes (control plane, gateways), the admin API
// it drives them with, and the guarantee that no child outlives the bench.

import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { baseEnv, logTail, waitForLogLine } from "@tollgate/testkit";

/** The key the gateways present upstream: the bench upstreams never check it. */
export const UPSTREAM_KEY = "sk-bench-upstream-not-a-real-key";

/**
 * Last resort: never leave a child behind, whatever kills this process. On exit every child still
 * running is killed; on SIGINT, SIGTERM and SIGHUP `cleanup` runs first.
 */
export function stopChildrenOnExit(children, cleanup, say) {
  process.once("exit", () => {
    for (const c of children) {
      if (!c.exit) {
        try {
          c.child.kill("SIGKILL");
        } catch {
          // gone
        }
      }
    }
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.once(signal, () => {
      say(`\n${signal}: stopping every child process and removing the temp dir…`);
      cleanup().finally(() => process.exit(130));
    });
  }
}

/** The environment every service child starts with: its data dir, its log level, any port on loopback. */
function serviceEnv(dataDir, logLevel) {
  return { ...baseEnv(), DATA_DIR: dataDir, HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: logLevel };
}

/** Waits for the service's `msg` log line, which carries its HTTP port and `otherPort`. */
function listeningLine(entry, msg, otherPort, timeoutMs) {
  return waitForLogLine(
    entry,
    (l) => l.msg === msg && typeof l.port === "number" && typeof l[otherPort] === "number",
    timeoutMs,
    `its "${msg}" line`,
  );
}

/** One admin API call with the master key: the JSON answer (or the text), or an error naming the call. */
export async function admin(cp, method, path, body) {
  const res = await fetch(cp.url + path, {
    method,
    headers: { authorization: `Bearer ${cp.masterKey}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return json;
}

/**
 * Starts the control plane (`start(name, script, env)` spawns the child) with a fresh master key,
 * on ports of its own choosing; `env` adds to the environment (e.g. a database).
 */
export async function startControlPlane({ start, main, dataDir, logLevel, env = {} }) {
  const masterKey = randomBytes(32).toString("base64url"); // 43 characters (≥ 32 required)
  mkdirSync(dataDir, { recursive: true });
  const entry = start("control-plane", main, {
    ...serviceEnv(dataDir, logLevel),
    PROXY_MASTER_KEY: masterKey,
    GRPC_PORT: "0",
    ...env,
  });
  const line = await listeningLine(entry, "control plane listening", "grpcPort", 120_000);
  return { entry, masterKey, url: `http://127.0.0.1:${line.port}`, grpcUrl: `http://127.0.0.1:${line.grpcPort}` };
}

/**
 * Starts a gateway enrolled at `cp` with `gatewayToken`, sending OpenAI traffic to `upstreamUrl`,
 * and waits until its /readyz answers 200 (it has its keys). `label` names it in errors.
 */
export async function startReadyGateway({
  start,
  main,
  name,
  label = name,
  gatewayName,
  dataDir,
  cp,
  gatewayToken,
  upstreamUrl,
  logLevel,
  env = {},
}) {
  mkdirSync(dataDir, { recursive: true });
  const entry = start(name, main, {
    ...serviceEnv(dataDir, logLevel),
    CONTROL_PLANE_URL: cp.grpcUrl,
    GATEWAY_TOKEN: gatewayToken,
    GATEWAY_NAME: gatewayName,
    STATUS_PORT: "0",
    OPENAI_BASE_URL: `${upstreamUrl}/v1`,
    OPENAI_API_KEY: UPSTREAM_KEY,
    ...env,
  });
  const line = await listeningLine(entry, "gateway listening", "statusPort", 60_000);
  const statusUrl = `http://127.0.0.1:${line.statusPort}`;
  const deadline = performance.now() + 60_000;
  for (;;) {
    const res = await fetch(`${statusUrl}/readyz`).catch(() => null);
    await res?.arrayBuffer();
    if (res?.status === 200) break;
    if (entry.exit) throw new Error(`${label} exited before ready; log tail:\n${logTail(entry)}`);
    if (performance.now() > deadline) throw new Error(`${label} not ready within 60 s; log tail:\n${logTail(entry)}`);
    await sleep(50);
  }
  return { entry, port: line.port, statusUrl };
}
