import type { GatewayConfig } from "../src/config.js";
import { mockProviderConfig } from "../src/providers/provider-config.js";

/** A gateway config for tests: loopback, free ports, the mock provider. */
export function testConfig(
  dataDir: string,
  controlPlaneUrl: string,
  token: string,
  overrides: Partial<GatewayConfig> = {},
): GatewayConfig {
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
