#!/usr/bin/env node
// The newcomer's stack (`pnpm start`, after `tsc -b`): a control plane on
// embedded PGlite plus one attached gateway, with what to try printed.
// Everything it keeps lives in <repo>/.data/ (delete it to start over).
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fail, installSignalHandlers, isShuttingDown, startChild, waitForLine } from "./start/children.mjs";
import { baseEnv, loadMasterKey, pass, resolvePorts } from "./start/config.mjs";
import { ensureGatewayToken } from "./start/gateway-token.mjs";
import { c, endProgress, info, println, setProgress, warn } from "./start/output.mjs";
import { controlPlaneMain, dataDir, gatewayMain, rel, root } from "./start/paths.mjs";
import { printTour } from "./start/tour.mjs";

installSignalHandlers();

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

  const masterKey = await loadMasterKey();
  const { cpPort, grpcPort, gwPort, gwStatusPort } = await resolvePorts();

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

  const gwToken = await ensureGatewayToken(adminUrl, masterKey);

  // ---- gateway
  const useOpenAI = Boolean(process.env.OPENAI_BASE_URL || process.env.OPENAI_API_KEY);
  const provider = useOpenAI
    ? `OpenAI (${process.env.OPENAI_BASE_URL || "https://api.openai.com/v1"})`
    : "built-in mock provider (set OPENAI_API_KEY to call OpenAI)";
  info(
    `starting the gateway (${useOpenAI ? "OpenAI upstream" : "mock provider"}, cache in ${rel(join(dataDir, "gateway"))})…`,
  );
  // The node flags the gateway image starts with (heap sizes: they cannot be set at run time).
  const { flags } = JSON.parse(readFileSync(join(root, "gateway", "node-flags.json"), "utf8"));
  const gw = startChild("gateway", c.blue, gatewayMain, {
    ...baseEnv,
    NODE_OPTIONS: [process.env.NODE_OPTIONS, ...flags].filter(Boolean).join(" "),
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
    if (isShuttingDown()) return;
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
  printTour({ adminPort, grpcActual, gatewayPort, statusPort, provider, masterKey });
}

main().catch((err) => fail(`unexpected error: ${err?.stack ?? err}`, "please report this with the output above"));
