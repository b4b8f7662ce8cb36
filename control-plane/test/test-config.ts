import { loadConfig, type ControlPlaneConfig } from "../src/config.js";

export const TEST_MASTER_KEY = "sk-test-master-key-0123456789abcdef0123";

/** A control-plane config for in-process tests: loopback, free ports, silent. */
export function testConfig(overrides: Partial<ControlPlaneConfig> = {}): ControlPlaneConfig {
  return {
    ...loadConfig({
      PROXY_MASTER_KEY: TEST_MASTER_KEY,
      HOST: "127.0.0.1",
      PORT: "0",
      GRPC_PORT: "0",
      LOG_LEVEL: "silent",
    }),
    ...overrides,
  };
}
