// Configuration of the newcomer's stack: the master key, the ports, and the
// environment each service gets.
import { randomInt } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { fail, portVars } from "./children.mjs";
import { info } from "./output.mjs";
import { masterKeyFile, rel } from "./paths.mjs";

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

export function writeSecret(file, content) {
  writeFileSync(file, content, { mode: 0o600 });
  chmodSync(file, 0o600); // the mode option does not apply when the file already existed
}

/** Master key: from the env, else the persisted one, else a new one. */
export async function loadMasterKey() {
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
  return masterKey;
}

/** The four ports from the env (or defaults), each distinct and free. */
export async function resolvePorts() {
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
  return { cpPort, grpcPort, gwPort, gwStatusPort };
}

// Service env: only what each needs (plus PATH/HOME etc.), never the other's PORT.
const serviceVars =
  /^(PORT|GRPC_PORT|STATUS_PORT|DATA_DIR|HOST|LOG_LEVEL|PROXY_MASTER_KEY|DATABASE_\w+|CONTROL_PLANE_URL|GATEWAY_\w+|OPENAI_\w+|ANTHROPIC_\w+)$/;
export const baseEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k, v]) => v !== undefined && !serviceVars.test(k)),
);
export const pass = (...names) =>
  Object.fromEntries(names.filter((n) => process.env[n]).map((n) => [n, process.env[n]]));
