#!/usr/bin/env node
// Postgres round trips per admin write: starts the built control plane in-process
// (no gateway), wraps pg.Client.prototype.query to count the statements each call
// sends, and times the call. With BENCH_BASELINE_ROOT (a built checkout), runs it
// too, alternating rounds, each side in its own child process.
// Timings only: nothing here asserts.
//
// Run: DATABASE_URL=postgres://… node bench/write-round-trips.mjs
// Knobs: BENCH_WRITES (200 per round), BENCH_ROUNDS (3), BENCH_BASELINE_ROOT.

import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const WRITES = Number(process.env.BENCH_WRITES ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MASTER_KEY = "sk-bench-round-trips-master-0123456789abcdef";

function pct(values, p) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

/** One side, in this process: the figures of WRITES calls of each kind. */
async function child(root) {
  const require = createRequire(join(root, "control-plane", "package.json"));
  const pg = require("pg");
  let count = 0;
  const query = pg.Client.prototype.query;
  pg.Client.prototype.query = function (...args) {
    count++;
    return query.apply(this, args);
  };
  const { createControlPlane, loadConfig } = await import(
    pathToFileURL(join(root, "control-plane/dist/index.js")).href
  );
  const schema = `rt_${process.pid}`;
  const cp = createControlPlane(
    loadConfig({
      PROXY_MASTER_KEY: MASTER_KEY,
      DATABASE_URL: process.env.DATABASE_URL,
      DATABASE_SCHEMA: schema,
      HOST: "127.0.0.1",
      PORT: "0",
      GRPC_PORT: "0",
      LOG_LEVEL: "silent",
      DATA_DIR: os.tmpdir(),
    }),
  );
  const { port } = await cp.start();
  const call = async (method, path, body) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { authorization: `Bearer ${MASTER_KEY}`, "content-type": "application/json" },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const team = await call("POST", "/internal/teams", { name: "rt", tpm_limit: 100000 });
  const user = await call("POST", "/internal/users", { external_id: "rt@example.com", team_id: team.id });
  const out = {};
  const measure = async (kind, fn) => {
    const trips = [];
    const ms = [];
    for (let i = 0; i < WRITES; i++) {
      const before = count;
      const t0 = performance.now();
      await fn(i);
      ms.push(performance.now() - t0);
      trips.push(count - before);
    }
    out[kind] = {
      round_trips_p50: pct(trips, 50),
      round_trips_max: Math.max(...trips),
      ms_p50: pct(ms, 50),
      ms_p99: pct(ms, 99),
    };
  };
  const ids = [];
  await measure("create", async (i) =>
    ids.push((await call("POST", "/internal/api-keys?wait_for_gateways=0", { user_id: user.id, name: `k${i}` })).id),
  );
  await measure("update", (i) => call("PATCH", `/internal/api-keys/${ids[i]}?wait_for_gateways=0`, { name: `r${i}` }));
  await measure("delete", (i) => call("DELETE", `/internal/api-keys/${ids[i]}?wait_for_gateways=0`));
  await cp.stop();
  const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await admin.connect();
  await admin.query(`drop schema ${schema} cascade`);
  await admin.end();
  process.stdout.write(JSON.stringify(out));
}

if (process.env.RT_CHILD_ROOT) {
  await child(process.env.RT_CHILD_ROOT);
  process.exit(0);
}

const sides = { now: resolve(HERE, "..") };
if (process.env.BENCH_BASELINE_ROOT) sides.baseline = resolve(process.env.BENCH_BASELINE_ROOT);
const runs = [];
for (let round = 0; round < ROUNDS; round++) {
  for (const [side, root] of Object.entries(sides)) {
    const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
      env: { ...process.env, RT_CHILD_ROOT: root },
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`${side}: ${r.stderr}`);
    runs.push({ round, side, load, ...JSON.parse(r.stdout) });
    console.log(side, round, `load ${load}`, r.stdout);
  }
}
const file = join(
  HERE,
  "results",
  `write-round-trips-${new Date()
    .toISOString()
    .replace(/:/g, "-")
    .replace(/\.\d+Z$/, "Z")}.json`,
);
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, JSON.stringify({ writes: WRITES, rounds: ROUNDS, runs }, null, 2));
console.log(`wrote ${file}`);
