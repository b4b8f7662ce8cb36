// Fleet quota bench: paths, the BENCH_QUOTA_* knobs, constants and output helpers.
import { dirname, join, resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import { createReporter, intList, positive } from "./cli.mjs";

// The bench/ directory (this module lives in bench/lib/).
export const HERE = join(dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = process.env.BENCH_BUILD_ROOT ? resolvePath(process.env.BENCH_BUILD_ROOT) : join(HERE, "..");
export const CONTROL_PLANE_MAIN = join(ROOT, "control-plane", "dist", "main.js");
export const GATEWAY_MAIN = join(ROOT, "gateway", "dist", "main.js");

// ---------------------------------------------------------------- settings

function parseEnv(env) {
  const parts = (env.BENCH_QUOTA_PARTS ?? "budget,rpm")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const p of parts)
    if (p !== "budget" && p !== "rpm") throw new Error(`BENCH_QUOTA_PARTS: ${JSON.stringify(p)} is not budget or rpm`);
  const skew = positive("BENCH_QUOTA_SKEW", env.BENCH_QUOTA_SKEW, 0.8);
  if (skew >= 1) throw new Error("BENCH_QUOTA_SKEW must be below 1");
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    parts,
    gateways: intList("BENCH_QUOTA_GATEWAYS", env.BENCH_QUOTA_GATEWAYS, [2, 4]),
    rpmLimits: intList("BENCH_QUOTA_RPM", env.BENCH_QUOTA_RPM, [600, 6000]),
    // Offered requests per minute, as a multiple of the limit.
    offered: positive("BENCH_QUOTA_OFFERED", env.BENCH_QUOTA_OFFERED, 2),
    // Share of the requests sent to gateway 1; the rest is spread evenly over the others.
    skew,
    // Most requests in flight per rpm key (more offered is counted as dropped, not sent).
    rpmMaxInFlight: Math.floor(positive("BENCH_QUOTA_RPM_MAX_IN_FLIGHT", env.BENCH_QUOTA_RPM_MAX_IN_FLIGHT, 256)),
    budgetUsd: positive("BENCH_QUOTA_BUDGET_USD", env.BENCH_QUOTA_BUDGET_USD, 50),
    // Concurrent workers driving a budget key (each one request at a time).
    connections: Math.floor(positive("BENCH_QUOTA_CONNECTIONS", env.BENCH_QUOTA_CONNECTIONS, 32)),
    // Uncapped budget runs per fleet size (each about 1 s of load; the figure varies run to run).
    uncappedRuns: Math.floor(positive("BENCH_QUOTA_UNCAPPED_RUNS", env.BENCH_QUOTA_UNCAPPED_RUNS, 3)),
    // USD per million tokens for the price override of gpt-4o-mini.
    inputPrice: positive("BENCH_QUOTA_INPUT_USD_PER_MTOK", env.BENCH_QUOTA_INPUT_USD_PER_MTOK, 100),
    outputPrice: positive("BENCH_QUOTA_OUTPUT_USD_PER_MTOK", env.BENCH_QUOTA_OUTPUT_USD_PER_MTOK, 400),
    cappedMaxTokens: Math.floor(positive("BENCH_QUOTA_MAX_TOKENS", env.BENCH_QUOTA_MAX_TOKENS, 64)),
    uncappedCompletion: Math.floor(
      positive("BENCH_QUOTA_UNCAPPED_COMPLETION", env.BENCH_QUOTA_UNCAPPED_COMPLETION, 1536),
    ),
    resultsDir: env.BENCH_RESULTS_DIR || join(HERE, "results"),
    logLevel: env.BENCH_LOG_LEVEL || "info",
    keepTmp: env.BENCH_KEEP_TMP === "1",
  };
}

export const settings = parseEnv(process.env);
export const MODEL = "gpt-4o-mini";
/** The gateway's reservation for a request without max_tokens (gateway/src/quota/enforce.ts). */
export const DEFAULT_RESERVED_OUTPUT_TOKENS = 1024;
/** The quota manager's default prefetch (gateway/src/quota/quota-manager.ts). */
export const PREFETCH_FRACTION = 0.02;

// ---------------------------------------------------------------- output

export const { progress, say } = createReporter({ plainEveryMs: 5_000 });

export const round1 = (x) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);
export const round6 = (x) => (x === null || x === undefined ? null : Math.round(x * 1e6) / 1e6);
export const pct = (x) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(2)} %`);
export const usd = (micro) => `$${(micro / 1e6).toFixed(4)}`;
