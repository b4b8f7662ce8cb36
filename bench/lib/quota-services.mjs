// Fleet quota bench: starting the fake upstream, the control plane and the gateways.
import http from "node:http";
import { join } from "node:path";
import { baseEnv, logText, waitForIpcPort } from "@tollgate/testkit";
import { startControlPlane as startServiceControlPlane, startReadyGateway } from "./services.mjs";
import { startChild } from "./quota-runtime.mjs";
import { CONTROL_PLANE_MAIN, GATEWAY_MAIN, HERE, ROOT, settings } from "./quota-settings.mjs";
import { state } from "./quota-runtime.mjs";

// ---------------------------------------------------------------- services

export async function startUpstream() {
  const entry = startChild(
    "quota-upstream",
    join(HERE, "quota-upstream.mjs"),
    {
      ...baseEnv(),
      HOST: "127.0.0.1",
      PORT: "0",
      BUILD_ROOT: ROOT,
      UNCAPPED_COMPLETION_TOKENS: String(settings.uncappedCompletion),
    },
    { ipc: true },
  );
  const port = await waitForIpcPort(entry, 20_000);
  return { entry, url: `http://127.0.0.1:${port}` };
}

export const startControlPlane = (schema) =>
  startServiceControlPlane({
    start: startChild,
    main: CONTROL_PLANE_MAIN,
    dataDir: join(state.tmpDir, "control-plane"),
    logLevel: settings.logLevel,
    env: settings.databaseUrl ? { DATABASE_URL: settings.databaseUrl, DATABASE_SCHEMA: schema } : {},
  });

export async function startGateway(cp, gatewayToken, upstreamUrl, index) {
  const name = `gateway-${index + 1}`;
  const dataDir = join(state.tmpDir, name);
  const { entry, port, statusUrl } = await startReadyGateway({
    start: startChild,
    main: GATEWAY_MAIN,
    name,
    gatewayName: `bench-${index + 1}`,
    dataDir,
    cp,
    gatewayToken,
    upstreamUrl,
    logLevel: settings.logLevel,
    // Every bench client is 127.0.0.1; refusals must never turn into IP blocks.
    env: { BRUTE_FORCE_MAX_FAILED_ATTEMPTS: "1000000" },
  });
  return { name, entry, dataDir, port, statusUrl, agent: new http.Agent({ keepAlive: true, maxSockets: 128 }) };
}

/** Log lines of a gateway that say it lost the quota service (it then enforces its even share alone). */
export function degradedLines(gw) {
  return logText(gw.entry)
    .split("\n")
    .filter((l) => l.includes("quota service unreachable")).length;
}
