// A preload for a bench child (BENCH_GATEWAY_NODE_FLAGS="--require <this file>"): the server-side
// time of every /v1/ request (the 'request' event to the response's 'finish', upstream call
// included) and every GC pause, written on exit to
// the temp directory as server-latency-<pid>.json (elsewhere: BENCH_GATEWAY_ENV=BENCH_SERVER_LATENCY_DIR=<dir>).
// Read it with `node bench/server-latency-report.mjs <file>`: it splits the last measured window
// into its first seconds after the load resumed and the rest, to tell a warm-up tail from a
// steady one. Diagnostic only: it costs the process a little CPU per request.
const http = require("node:http");
const { tmpdir } = require("node:os");
const { join } = require("node:path");
const { writeFileSync } = require("node:fs");
const { PerformanceObserver, performance } = require("node:perf_hooks");

const requests = [];
const gcs = [];
const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, ...args) {
  const [req, res] = args;
  if (event === "request" && typeof req.url === "string" && req.url.startsWith("/v1/")) {
    const at = performance.now();
    res.once("finish", () => requests.push([at, performance.now() - at]));
  }
  return emit.call(this, event, ...args);
};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push([e.startTime, e.duration, e.detail?.kind ?? null]);
}).observe({ entryTypes: ["gc"] });
process.on("exit", () => {
  const dir = process.env.BENCH_SERVER_LATENCY_DIR || tmpdir();
  writeFileSync(join(dir, `server-latency-${process.pid}.json`), JSON.stringify({ requests, gcs }));
});
