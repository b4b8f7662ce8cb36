import { PassThrough } from "node:stream";
import { createLogger, type Logger } from "@tollgate/shared";
import type { GatewayConfig } from "../config.js";
import { mockProviderConfig } from "../providers/provider-config.js";

/** A gateway config for tests: loopback, free ports, the mock provider. */
export function testConfig(dataDir: string, controlPlaneUrl: string, token: string, overrides: Partial<GatewayConfig> = {}): GatewayConfig {
  return {
    mcp: { secrets: new Map(), maxMessageBytes: 64 * 1024 },
    controlPlaneUrl,
    controlPlaneTls: {},
    gatewayToken: token,
    gatewayName: "test-gateway",
    dataDir,
    host: "127.0.0.1",
    port: 0,
    statusPort: 0,
    providers: [mockProviderConfig(5_000)],
    upstreamTimeoutMs: 5_000,
    maxBodyBytes: 64 * 1024,
    logLevel: "debug",
    shutdownGraceMs: 200,
    maxStalenessMs: null,
    syncHeartbeatIntervalMs: 3_600_000,
    trustedProxies: [],
    bruteForce: { enabled: true, maxFailedAttempts: 5, ttlMs: 900_000 },
    authBypassPaths: [],
    disableAuth: false,
    maxHeaderBytes: 16 * 1024,
    requestTimeoutMs: 60_000,
    ...overrides,
  };
}

/** A logger whose JSON lines the test can read. */
export function capturedLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new PassThrough();
  stream.on("data", (b: Buffer) => {
    for (const l of b.toString("utf8").split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  return { logger: createLogger({ name: "gateway", level: "debug", destination: stream }), lines };
}

/** Polls `fn` until it returns something other than undefined. */
export async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A clock the test moves by hand. */
export function manualClock(start = Date.now()): { now(): number; advance(ms: number): void } {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

/** Status and client endpoints of a started gateway. */
export function endpoints(addr: { port: number; statusPort: number }) {
  const base = `http://127.0.0.1:${addr.port}`;
  const status = `http://127.0.0.1:${addr.statusPort}`;
  return {
    base,
    status,
    readyz: async () => {
      const res = await fetch(`${status}/readyz`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    metrics: async () => (await fetch(`${status}/metrics`)).text(),
    chat: (apiKey: string) =>
      fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
      }),
  };
}
