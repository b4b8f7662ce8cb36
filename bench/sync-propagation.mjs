#!/usr/bin/env node
// Key sync benchmark: how fast an admin write reaches every gateway's in-memory
// index, and how long a fresh gateway takes to load a full snapshot.
//
// Runs the real control plane and N real gateways (the built packages from
// control-plane/dist and gateway/dist), talks to the control plane over its
// admin HTTP API like an operator would, and watches each gateway's in-memory
// key index. Timings only: nothing here asserts.
//
// Two modes for the gateways of the propagation part (BENCH_WORKERS):
//   ≥ 1 (default 2): the gateways run in that many worker_threads workers
//       (sync-gateway-worker.mjs), each hosting its share of the N; the control
//       plane and the admin calls stay on this main thread. The workers report
//       when each key lands in each gateway's index, stamped with
//       performance.timeOrigin + performance.now() (comparable across threads).
//   0: everything on this one thread, as before (a stress figure: the control
//       plane and all N gateways share one event loop).
//
// Run: pnpm bench:sync   (builds first). Knobs: see README.md or `parseEnv` (lib/sync-settings.mjs).

import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createControlPlane, loadConfig as loadControlPlaneConfig } from "@tollgate/control-plane";
import { createLogger } from "@tollgate/shared";
import { machine } from "@tollgate/testkit";
import { adminClient, stopGateways } from "./lib/sync-fleet.mjs";
import { revision, say } from "./lib/sync-helpers.mjs";
import { propagation } from "./lib/sync-propagation-workers.mjs";
import { markdown } from "./lib/sync-report.mjs";
import { settings } from "./lib/sync-settings.mjs";
import { snapshot } from "./lib/sync-snapshot.mjs";

// ---------------------------------------------------------------- main

async function main() {
  const tmpRoot = mkdtempSync(join(os.tmpdir(), "tollgate-bench-"));
  const logger = createLogger({ name: "bench", level: settings.logLevel });
  const masterKey = randomBytes(32).toString("base64url");
  const schema = settings.databaseUrl ? `bench_${randomBytes(5).toString("hex")}` : "public";
  const database = settings.databaseUrl ? `postgres (schema ${schema})` : "pglite";
  const cp = createControlPlane(
    loadControlPlaneConfig({
      PROXY_MASTER_KEY: masterKey,
      DATABASE_URL: settings.databaseUrl,
      DATABASE_SCHEMA: schema,
      DATA_DIR: join(tmpRoot, "control-plane"),
      HOST: "127.0.0.1",
      PORT: "0",
      GRPC_PORT: "0",
      LOG_LEVEL: "silent",
      // Sync tuning knobs (SYNC_HEARTBEAT_INTERVAL, SYNC_DEBOUNCE, …) pass through from the environment.
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("SYNC_"))),
    }),
    { logger },
  );
  const env = { tmpRoot, logger, cp, seeded: 0, seedPath: undefined, onIndexEvent: () => {}, live: new Set() };
  const results = {
    date: new Date().toISOString(),
    database: settings.databaseUrl ? "postgres" : "pglite",
    mode: settings.workers ? "workers" : "single-thread",
    workers: settings.workers,
    machine: machine(),
    source: revision(),
    sync_env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("SYNC_"))),
    settings: { ...settings, databaseUrl: settings.databaseUrl ? "(set)" : undefined, resultsDir: undefined },
    propagation: [],
    snapshot: [],
    errors: [],
  };
  const tRun = performance.now();
  const loadAtStart = Math.round(os.loadavg()[0] * 100) / 100;
  say(`tollgate sync bench: ${database}, ${results.machine.nproc} CPU ${results.machine.cpu}, Node ${process.version}`);
  try {
    const { port, grpcPort } = await cp.start();
    env.controlPlaneUrl = `http://127.0.0.1:${grpcPort}`;
    env.admin = adminClient(`http://127.0.0.1:${port}`, masterKey);
    env.gatewayToken = (await env.admin.post("/internal/gateway-tokens", { name: "bench" })).json.token;
    env.userId = (
      await env.admin.post("/internal/users", { external_id: `bench-${randomBytes(4).toString("hex")}@example.com` })
    ).json.id;

    for (let i = 0; i < settings.gateways.length; i++) {
      try {
        results.propagation.push(await propagation(env, settings.gateways[i], settings.writes[i]));
      } catch (err) {
        say(`[propagation N=${settings.gateways[i]}] failed: ${err.message}`);
        results.errors.push({ part: `propagation N=${settings.gateways[i]}`, error: err.message });
        throw err;
      }
    }
    for (const size of settings.snapshotSizes) {
      try {
        results.snapshot.push(await snapshot(env, size));
      } catch (err) {
        say(`[snapshot ${size}] failed: ${err.message}`);
        results.errors.push({ part: `snapshot ${size}`, error: err.message });
        throw err;
      }
    }
  } finally {
    for (const f of [...env.live]) await stopGateways(env, f).catch(() => {});
    if (settings.databaseUrl && cp.context) {
      await cp.context.db.schema
        .dropSchema(schema)
        .ifExists()
        .cascade()
        .execute()
        .catch((err) => {
          say(`could not drop schema ${schema}: ${err.message}`);
        });
    }
    await cp.stop();
    rmSync(tmpRoot, { recursive: true, force: true });
    results.total_s = Math.round((performance.now() - tRun) / 100) / 10;
    // Other work on the machine skews the figures: keep the 1-minute load at both ends.
    results.machine.loadavg_1m = { start: loadAtStart, end: Math.round(os.loadavg()[0] * 100) / 100 };
    mkdirSync(settings.resultsDir, { recursive: true });
    const stamp = results.date.replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
    const kind = settings.workers ? `workers${settings.workers}` : "single";
    const file = join(settings.resultsDir, `sync-${stamp}-${results.database}-${kind}.json`);
    writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
    say("");
    say(markdown(results));
    say("");
    say(`total ${results.total_s} s; results written to ${file}`);
  }
}

// If something keeps the process alive after the run, say what instead of hanging.
main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    setTimeout(() => {
      console.error("bench: still running 10 s after the end; open resources:", process.getActiveResourcesInfo());
      process.exit(process.exitCode || 2);
    }, 10_000).unref();
  });
