// Gateway throughput bench: starting the fake upstream, node-proxy, control plane, gateways and Portkey.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { baseEnv, logTail, waitForIpcPort } from "@tollgate/testkit";
import { admin, startControlPlane as startServiceControlPlane, startReadyGateway } from "./services.mjs";
import { freePort } from "./proc-stats.mjs";
import { run, startChild } from "./throughput-runtime.mjs";
import { CONTROL_PLANE_MAIN, GATEWAY_MAIN, HERE, requireHere, ROOT, settings } from "./throughput-settings.mjs";
import { gatewayNodeFlags } from "./gateway-node-flags.mjs";

// ---------------------------------------------------------------- services

/** Forks a bench helper that reports { port } over IPC. */
async function startIpcChild(name, script, env) {
  const entry = startChild(name, script, [], env, { ipc: true });
  const port = await waitForIpcPort(entry, 15_000);
  return { entry, url: `http://127.0.0.1:${port}` };
}

export const startUpstream = () =>
  startIpcChild("fake-upstream", join(HERE, "fake-upstream.mjs"), { ...baseEnv(), HOST: "127.0.0.1", PORT: "0" });
export const startNodeProxy = (upstreamUrl) =>
  startIpcChild("node-proxy", join(HERE, "node-proxy.mjs"), { ...baseEnv(), UPSTREAM: upstreamUrl, BUILD_ROOT: ROOT });
/** node-proxy.mjs with BARE=1: plus key hash and JSON.parse of request and answer. */
export const startBare = (upstreamUrl) =>
  startIpcChild("bare", join(HERE, "node-proxy.mjs"), {
    ...baseEnv(),
    UPSTREAM: upstreamUrl,
    BUILD_ROOT: ROOT,
    BARE: "1",
  });

/** same-work-proxy.mjs: bare plus auth, quota, usage journal, request log and metrics, written directly. */
export const startSameWork = (upstreamUrl) =>
  startIpcChild("same-work", join(HERE, "same-work-proxy.mjs"), {
    ...baseEnv(),
    UPSTREAM: upstreamUrl,
    BUILD_ROOT: ROOT,
  });

export const startControlPlane = () =>
  startServiceControlPlane({
    start: (name, script, env) => startChild(name, script, [], env),
    main: CONTROL_PLANE_MAIN,
    dataDir: join(run.tmpDir, "control-plane"),
    logLevel: settings.logLevel,
  });

/** A team, a user and one API key with every scope the gateway checks per request. */
export async function seed(cp) {
  const teamLimits =
    settings.quota === "tokens" ? { tpm_limit: 1_000_000_000, daily_token_limit: 1_000_000_000_000 } : {};
  const team = await admin(cp, "POST", "/internal/teams", { name: "bench", ...teamLimits });
  const user = await admin(cp, "POST", "/internal/users", { external_id: "bench@example.com", team_id: team.id });
  const key = await admin(cp, "POST", "/internal/api-keys", {
    name: "bench",
    user_id: user.id,
    allowed_providers: ["openai"],
    allowed_models: ["gpt-4o*", "gpt-4.1-mini"],
    ip_allowlist: ["127.0.0.1", "::1", "10.0.0.0/8"],
    metadata: { purpose: "gateway-throughput bench", team: "bench" },
    // So the fleet quota (lease) path runs on every request.
    rpm_limit: 100_000_000,
  });
  const token = await admin(cp, "POST", "/internal/gateway-tokens", { name: "bench" });
  const baselineToken = settings.targets.includes("baseline")
    ? await admin(cp, "POST", "/internal/gateway-tokens", { name: "bench-baseline" })
    : null;
  return {
    apiKey: key.key,
    keyId: key.id,
    gatewayToken: token.token,
    baselineGatewayToken: baselineToken?.token ?? null,
  };
}

export async function startGateway(cp, gatewayToken, upstreamUrl, { name = "gateway", main = GATEWAY_MAIN } = {}) {
  const dataDir = join(run.tmpDir, name);
  // Each build starts with the node flags its image does (gateway/node-flags.json), then the
  // bench's: the extra flags and the profile are for the gateway measured, the baseline has its own.
  const nodeArgs =
    name === "gateway"
      ? [
          ...gatewayNodeFlags(ROOT),
          ...settings.gatewayNodeFlags,
          ...(settings.gatewayCpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${settings.gatewayCpuProfDir}`] : []),
        ]
      : [...gatewayNodeFlags(dirname(dirname(dirname(main)))), ...settings.baselineNodeFlags];
  const { entry, port, statusUrl } = await startReadyGateway({
    start: (childName, script, env) => startChild(childName, script, [], env, { nodeArgs }),
    main,
    name,
    label: "gateway",
    gatewayName: name === "gateway" ? "bench" : `bench-${name}`,
    dataDir,
    cp,
    gatewayToken,
    upstreamUrl,
    logLevel: settings.logLevel,
    env: name === "gateway" ? settings.gatewayEnv : {},
  });
  return { entry, dataDir, url: `http://127.0.0.1:${port}`, statusUrl };
}

function portkeyInfo() {
  const pkgPath = requireHere.resolve("@portkey-ai/gateway/package.json");
  const pkg = JSON.parse(readFileSync(pkgPath, "utf8"));
  return { version: pkg.version, main: join(dirname(pkgPath), "build", "start-server.js") };
}

export async function startPortkey() {
  const info = portkeyInfo();
  const port = await freePort();
  // NODE_ENV=production and --headless: no log UI, no /public routes. The preload works
  // around Portkey's streaming failure under Node (see portkey/preload.mjs).
  const nodeArgs = settings.portkeyShim ? ["--import", join(HERE, "portkey", "preload.mjs")] : [];
  const entry = startChild(
    "portkey",
    info.main,
    [`--port=${port}`, "--headless"],
    { ...baseEnv(), NODE_ENV: "production" },
    { nodeArgs },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + 60_000;
  for (;;) {
    const res = await fetch(`${url}/`).catch(() => null);
    if (res) {
      await res.arrayBuffer();
      if (res.status === 200) break;
    }
    if (entry.exit) throw new Error(`Portkey exited (${JSON.stringify(entry.exit)}); log tail:\n${logTail(entry)}`);
    if (performance.now() > deadline)
      throw new Error(`Portkey did not answer GET / within 60 s; log tail:\n${logTail(entry)}`);
    await sleep(100);
  }
  return { entry, url, version: info.version };
}
