import { join } from "node:path";
import { adminClient, readBody, type AdminClient, type HttpResult } from "./http.js";
import {
  baseEnv,
  mergeEnv,
  repoRoot,
  requireBuilt,
  spawnService,
  tail,
  type CommonOptions,
  type ServiceProcess,
} from "./processes.js";
import { waitFor } from "./wait.js";

// Tollgate's two services as child processes, started from their built
// `dist/main.js` (never imported: testkit depends on no service's source).

export const controlPlaneMain = join(repoRoot, "control-plane", "dist", "main.js");
export const gatewayMain = join(repoRoot, "gateway", "dist", "main.js");

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

/** What every service is started with: its data directory, a loopback port (0: any) and its log level. */
function serviceEnv(opts: {
  dataDir: string;
  port?: number | undefined;
  logLevel?: string | undefined;
}): Record<string, string> {
  return {
    ...baseEnv(),
    DATA_DIR: opts.dataDir,
    HOST: "127.0.0.1",
    PORT: String(opts.port ?? 0),
    LOG_LEVEL: opts.logLevel ?? "info",
  };
}

/**
 * Spawns `node control-plane/dist/main.js` with an explicit env and waits for
 * its `"control plane listening"` line.
 */
export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlaneProcess> {
  requireBuilt(controlPlaneMain);
  const env = mergeEnv(
    {
      ...serviceEnv(opts),
      PROXY_MASTER_KEY: opts.masterKey,
      GRPC_PORT: String(opts.grpcPort ?? 0),
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
      ...serviceEnv(opts),
      CONTROL_PLANE_URL: opts.controlPlaneUrl,
      GATEWAY_TOKEN: opts.token,
      GATEWAY_NAME: opts.name,
      STATUS_PORT: String(opts.statusPort ?? 0),
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
