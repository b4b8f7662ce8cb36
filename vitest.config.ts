import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: [
      "shared/src/**/*.test.ts",
      "control-plane/src/**/*.test.ts",
      "gateway/src/**/*.test.ts",
      "test/**/*.test.ts",
    ],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Cross-process suites start real servers; keep the 2-core machine unsaturated.
    maxWorkers: 2,
  },
});
