// Key sync bench: the BENCH_* knobs.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// The bench/ directory (this module lives in bench/lib/).
export const HERE = join(dirname(fileURLToPath(import.meta.url)), "..");

// ---------------------------------------------------------------- settings

function list(value, fallback) {
  if (value === undefined || value.trim() === "") return fallback;
  if (value.trim() === "0" || value.trim().toLowerCase() === "none") return [];
  return value.split(",").map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 0) throw new Error(`not a non-negative integer list: ${JSON.stringify(value)}`);
    return n;
  });
}

export function workerCount(value) {
  if (value === undefined || value.trim() === "") return 2;
  const n = Number(value.trim());
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`BENCH_WORKERS must be a non-negative integer, not ${JSON.stringify(value)}`);
  return n;
}

function parseEnv(env) {
  const gateways = list(env.BENCH_GATEWAYS, [1, 10, 50]);
  const writesList = list(env.BENCH_WRITES, []);
  // One write count per gateway count; a single number applies to all. Default: 200, or 100 from 50 gateways up.
  const writes = gateways.map(
    (n, i) => writesList[i] ?? (writesList.length === 1 ? writesList[0] : n >= 50 ? 100 : 200),
  );
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    gateways,
    writes,
    // Worker threads hosting the propagation gateways; 0 = all on the main thread.
    workers: workerCount(env.BENCH_WORKERS),
    pauseMs: Number(env.BENCH_PAUSE_MS ?? 20),
    snapshotSizes: list(env.BENCH_SNAPSHOT_SIZES, [10_000, 100_000]).sort((a, b) => a - b),
    opTimeoutMs: Number(env.BENCH_OP_TIMEOUT_MS ?? 10_000),
    readyTimeoutMs: Number(env.BENCH_READY_TIMEOUT_MS ?? 300_000),
    resultsDir: env.BENCH_RESULTS_DIR || join(HERE, "results"),
    // "silent" by default; e.g. BENCH_LOG_LEVEL=error to see why the control plane answered 500.
    logLevel: env.BENCH_LOG_LEVEL || "silent",
  };
}

export const settings = parseEnv(process.env);
