#!/usr/bin/env node
// Reads a lib/server-latency.cjs file: server-side latency percentiles over the last measured
// window (BENCH_DURATION_S seconds ending at the last request), split into its first
// SPLIT_S seconds and the rest, and how many slow requests overlapped a GC pause.
// Usage: node bench/server-latency-report.mjs <file> [windowS=10] [splitS=2.5] [slowMs=0.8]
import { readFileSync } from "node:fs";

const [file, windowS = "10", splitS = "2.5", slowMs = "0.8"] = process.argv.slice(2);
if (!file) {
  console.error("usage: node bench/server-latency-report.mjs <server-latency-*.json> [windowS] [splitS] [slowMs]");
  process.exit(2);
}
const { requests, gcs } = JSON.parse(readFileSync(file, "utf8"));
const end = requests[requests.length - 1][0];
const start = end - Number(windowS) * 1000;
const split = start + Number(splitS) * 1000;
const pct = (rows) => {
  const d = rows.map((r) => r[1]).sort((a, b) => a - b);
  const q = (p) => (d.length ? d[Math.min(d.length - 1, Math.floor(d.length * p))].toFixed(3) : "–");
  return `${String(d.length).padStart(7)} requests  p50 ${q(0.5)}  p90 ${q(0.9)}  p99 ${q(0.99)}  p99.9 ${q(0.999)} ms`;
};
const inWindow = requests.filter((r) => r[0] >= start);
console.log(`whole window (${windowS} s):  ${pct(inWindow)}`);
console.log(`its first ${splitS} s:      ${pct(inWindow.filter((r) => r[0] < split))}`);
console.log(`the rest:              ${pct(inWindow.filter((r) => r[0] >= split))}`);
const slow = inWindow.filter((r) => r[1] > Number(slowMs));
const overlapping = slow.filter(([at, d]) => gcs.some(([gs, gd]) => gs < at + d && gs + gd > at)).length;
console.log(
  `slower than ${slowMs} ms: ${slow.length}, of which ${overlapping} overlap a GC pause (${gcs.filter((g) => g[0] >= start).length} pauses in the window)`,
);
