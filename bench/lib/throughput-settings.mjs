// Gateway throughput bench: paths, the BENCH_* knobs, the request bodies and the reporter.
import { createRequire } from "node:module";
import { dirname, join, resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import { choiceList, createReporter, intList, positive } from "./cli.mjs";

// The bench/ directory (this module lives in bench/lib/).
export const HERE = join(dirname(fileURLToPath(import.meta.url)), "..");
// BENCH_BUILD_ROOT: another built checkout whose control-plane/dist and gateway/dist to run
// (e.g. a `git archive` export of a commit, installed and built); default this repository.
export const ROOT = process.env.BENCH_BUILD_ROOT ? resolvePath(process.env.BENCH_BUILD_ROOT) : join(HERE, "..");
export const CONTROL_PLANE_MAIN = join(ROOT, "control-plane", "dist", "main.js");
export const GATEWAY_MAIN = join(ROOT, "gateway", "dist", "main.js");
export const requireHere = createRequire(import.meta.url);

// ---------------------------------------------------------------- settings

// "bare": node-proxy.mjs plus the work any LLM proxy must do (key hash, JSON.parse of request and answer).
const ALL_TARGETS = ["direct", "node-proxy", "bare", "tollgate", "portkey"];
// "baseline": a second gateway built from BENCH_BASELINE_ROOT (e.g. the commit before a change),
// fed the same key by the same control plane, so before/after run interleaved in one bench.
// "same-work": same-work-proxy.mjs, the smallest proxy doing the gateway's per-request work (run only when named).
const KNOWN_TARGETS = [...ALL_TARGETS, "baseline", "same-work"];

function parseEnv(env) {
  return {
    durationS: positive("BENCH_DURATION_S", env.BENCH_DURATION_S, 5),
    warmupS: env.BENCH_WARMUP_S === "0" ? 0 : positive("BENCH_WARMUP_S", env.BENCH_WARMUP_S, 1),
    // Once per target and mode before anything is measured, at the largest connection count (JIT, pools).
    initialWarmupS:
      env.BENCH_INITIAL_WARMUP_S === "0" ? 0 : positive("BENCH_INITIAL_WARMUP_S", env.BENCH_INITIAL_WARMUP_S, 2),
    rounds: Math.floor(positive("BENCH_ROUNDS", env.BENCH_ROUNDS, 2)),
    connections: intList("BENCH_CONNECTIONS", env.BENCH_CONNECTIONS, [1, 32]),
    modes: choiceList("BENCH_MODES", env.BENCH_MODES, ["plain", "stream"], ["plain", "stream"]),
    // Run order within a round; "node-proxy" is the floor of any Node proxy hop (node-proxy.mjs).
    targets: choiceList("BENCH_TARGETS", env.BENCH_TARGETS, KNOWN_TARGETS, ALL_TARGETS),
    baselineRoot: env.BENCH_BASELINE_ROOT ? resolvePath(env.BENCH_BASELINE_ROOT) : null,
    // Limits the bench's key counts against: "tokens" (default: the team's tpm and daily token
    // limits, and the key's rpm; the tokenizer loads for the estimates) or "rpm" (the key's rpm
    // only: leases on, no token estimate, no tokenizer). All far above what the bench sends.
    quota: choiceList("BENCH_QUOTA", env.BENCH_QUOTA, ["tokens", "rpm"], ["tokens"])[0],
    resultsDir: env.BENCH_RESULTS_DIR || join(HERE, "results"),
    // LOG_LEVEL of the control plane and gateway (their logs go to files in the temp dir).
    logLevel: env.BENCH_LOG_LEVEL || "info",
    keepTmp: env.BENCH_KEEP_TMP === "1",
    // "0": run Portkey exactly as installed (its streaming then fails, see portkey/preload.mjs).
    portkeyShim: env.BENCH_PORTKEY_SHIM !== "0",
    // A directory: every measured run of a Node target (not direct, not Portkey) is recorded with
    // perf (on-CPU, all threads) into it, and the results carry where each target's CPU per request
    // went (lib/perf-profile.mjs). The children run with --perf-basic-prof; perf costs the run a
    // little CPU, so take throughput from runs without it.
    perfDir: env.BENCH_PERF ? resolvePath(env.BENCH_PERF) : null,
    // A directory: the gateway runs with --cpu-prof and writes its profile there on exit.
    gatewayCpuProfDir: env.BENCH_GATEWAY_CPU_PROF ? resolvePath(env.BENCH_GATEWAY_CPU_PROF) : null,
    // Extra node flags for the gateway child only, e.g. "--max-semi-space-size=2".
    gatewayNodeFlags: (env.BENCH_GATEWAY_NODE_FLAGS ?? "").split(/\s+/).filter(Boolean),
    // Extra environment for the measured gateway only, e.g. "MALLOC_ARENA_MAX=2".
    gatewayEnv: Object.fromEntries(
      (env.BENCH_GATEWAY_ENV ?? "")
        .split(/\s+/)
        .filter(Boolean)
        .map((kv) => {
          const eq = kv.indexOf("=");
          if (eq <= 0) throw new Error(`BENCH_GATEWAY_ENV: ${JSON.stringify(kv)} is not NAME=value`);
          return [kv.slice(0, eq), kv.slice(eq + 1)];
        }),
    ),
    baselineNodeFlags: (env.BENCH_BASELINE_NODE_FLAGS ?? "").split(/\s+/).filter(Boolean),
    rssIntervalMs: 100,
  };
}

export const settings = parseEnv(process.env);
export const MB = 1024 * 1024;
const MODEL = "gpt-4o-mini";
export const BODIES = {
  plain: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Say hello." }], max_tokens: 16 }),
  stream: JSON.stringify({
    model: MODEL,
    messages: [{ role: "user", content: "Say hello." }],
    max_tokens: 16,
    stream: true,
    stream_options: { include_usage: true },
  }),
};

// ---------------------------------------------------------------- small helpers

export const { progress, say } = createReporter();
