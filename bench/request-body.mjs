#!/usr/bin/env node
// The gateway's own work on a request body, step by step, in this process (CPU time, no
// sockets): decoding, the nesting-depth check, JSON.parse, the quota estimate, and the body
// rewrite a stream the gateway asks usage of needs. With BENCH_BASELINE_ROOT (a built
// checkout, e.g. the commit before a change) the same steps of that build run beside. Bodies
// are bench:sizes' agent-like prompts (lib/sizes-settings.mjs). Knobs: BENCH_SIZES (default
// 32k,256k,1m), BENCH_BODY_RUNS (default 40 per step and size).
//
// Run: pnpm bench:body (builds first). Prints a table; writes results/request-body-<time>.json.

import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { machine } from "@tollgate/testkit";
import { resultsHead, writeResults } from "./lib/cli.mjs";
import { bodyOf, parseSizesEnv } from "./lib/sizes-settings.mjs";
import { ROOT, settings } from "./lib/throughput-settings.mjs";

const runs = Number(process.env.BENCH_BODY_RUNS ?? 40);
const prompts = parseSizesEnv({
  BENCH_SIZES: process.env.BENCH_SIZES ?? "32k,256k,1m",
  BENCH_SIZE_KINDS: "prompt",
}).cells.map((c) => c.prompt);

const load = (root, file) => import(pathToFileURL(join(root, "gateway", "dist", file)).href);

/** The steps of one build; a step its build does not have is left out. */
async function steps(root) {
  const est = await load(root, "quota/estimate.js");
  const rb = await load(root, "http/read-body.js");
  const scan = await load(root, "http/json-scan.js").catch(() => null);
  await est.warmTokenizer();
  const text = scan ? (b) => scan.bodyText(b) : (b) => b.toString("utf8");
  return {
    decode: (b) => text(b),
    // The depth check the request path runs, on the text (the bytes that go upstream).
    "depth check": scan ? (_b, t) => rb.jsonDepthExceeds(t, 64) : (b) => rb.jsonDepthExceeds(b, 64),
    "JSON.parse": (_b, t) => JSON.parse(t),
    // Far from every limit a large body is reserved at its size bound: no counting.
    "estimate, far from a limit": (b, _t, j) =>
      est.SIZE_BOUND_MIN_BYTES && b.length >= est.SIZE_BOUND_MIN_BYTES ? 0 : est.estimatePromptTokens(j),
    "estimate, near a limit": (_b, _t, j) => est.estimatePromptTokens(j),
    "rewrite (include_usage)": (b, _t, j) =>
      scan?.withMembers(b, { stream_options: { include_usage: true } }) ??
      Buffer.from(JSON.stringify({ ...j, stream_options: { include_usage: true } })),
  };
}

function cpuMs(f, n) {
  for (let i = 0; i < 5; i++) f();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) f();
  const c = process.cpuUsage(c0);
  return Math.round(((c.user + c.system) / 1000 / n) * 1000) / 1000;
}

const { startedAt, head } = resultsHead("request-body", ROOT, machine());
const builds = { now: ROOT, ...(settings.baselineRoot ? { baseline: settings.baselineRoot } : {}) };
const results = { ...head, runs, builds, rows: [] };
for (const bytes of prompts) {
  const body = bodyOf({ kind: "prompt", prompt: bytes, chunks: 10, clientUsage: false });
  for (const [build, root] of Object.entries(builds)) {
    const s = await steps(root);
    const text = s.decode(body);
    const json = JSON.parse(text);
    const row = { bytes, build };
    for (const [name, f] of Object.entries(s)) row[name] = cpuMs(() => f(body, text, json), runs);
    const plain = row.decode + row["depth check"] + row["JSON.parse"] + row["estimate, far from a limit"];
    row["total, far from a limit"] = Math.round(plain * 1000) / 1000;
    results.rows.push(row);
  }
}
console.table(results.rows);
console.log(`results: ${writeResults(settings.resultsDir, "request-body", startedAt, results)}`);
