#!/usr/bin/env node
// Snapshot apply and memory per cached key, on the gateway side only (no network, no control plane).
//
// 1. apply: a BENCH_APPLY_KEYS-key snapshot (default 100,000) applied by the built gateway's own
//    KeyCache.applySnapshot to an empty cache (what a new gateway does), then the same snapshot
//    again (a resubscribe that finds nothing changed). CPU time (process.cpuUsage) and wall time
//    of each, and the size of gateway.db.
// 2. memory: for each of BENCH_MEMORY_KEYS (default 100,000 and 1,000,000) synthetic keys written
//    to a gateway's SQLite file, a fresh child process (--expose-gc, and the node flags the
//    gateway image starts with: gateway/node-flags.json of the build measured) opens the store and
//    loads the key index as the gateway does at boot (KeyCache.load), then reports heap after a
//    full GC, V8's committed heap and RSS, before and after: memory per cached key, the key index
//    plus SQLite's page cache.
//
// Imports the built gateway code by file path (BENCH_BUILD_ROOT: another built checkout, for A/B).
// Run: pnpm bench:apply (builds first). Timings only: nothing here asserts.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, resolve as resolvePath } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { intList, loadavg, revision } from "./lib/cli.mjs";
import { gatewayNodeFlags } from "./lib/gateway-node-flags.mjs";
import { benchStoredKey } from "./lib/sync-keys.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = process.env.BENCH_BUILD_ROOT ? resolvePath(process.env.BENCH_BUILD_ROOT) : join(HERE, "..");
const load = (rel) => import(pathToFileURL(join(ROOT, rel)).href);
const say = (s) => process.stderr.write(`${s}\n`);

const { openStore } = await load("gateway/dist/db/store.js");
const { KeyCache } = await load("gateway/dist/db/key-cache.js");
const { KeyIndex } = await load("gateway/dist/auth/key-index.js");
const { EMPTY_POLICY } = await load("gateway/dist/auth/stored-key.js");
const { generateApiKey, KeyStatus, SnapshotReason } = await load("shared/dist/index.js");
const { makeKey } = await import("@tollgate/testkit");

const clock = { now: () => Date.now() };
const mib = (b) => Math.round((b / 1024 ** 2) * 10) / 10;
const dbBytes = (dir) =>
  ["gateway.db", "gateway.db-wal"].reduce((sum, f) => {
    try {
      return sum + statSync(join(dir, f)).size;
    } catch {
      return sum;
    }
  }, 0);

// ---------------------------------------------------------------- child: memory of a loaded cache

if (process.argv[2] === "--memory-child") {
  const dir = process.argv[3];
  const settle = () => {
    for (let i = 0; i < 3; i++) globalThis.gc();
    const m = process.memoryUsage();
    return { heap: m.heapUsed + m.external + m.arrayBuffers, heapTotal: m.heapTotal, rss: m.rss };
  };
  const before = settle();
  const store = openStore(dir);
  const cache = new KeyCache(store, new KeyIndex(), clock);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const loaded = cache.load();
  const cpu = process.cpuUsage(cpu0);
  const loadMs = performance.now() - t0;
  const after = settle();
  process.stdout.write(
    JSON.stringify({
      keys: loaded.keys,
      load_ms: Math.round(loadMs),
      load_cpu_ms: Math.round((cpu.user + cpu.system) / 1000),
      heap_delta: after.heap - before.heap,
      rss_delta: after.rss - before.rss,
      rss: after.rss,
      // What V8 keeps committed for its heap after the GC: used plus what fragmentation left.
      heap_committed: after.heapTotal,
    }),
  );
  store.close();
  process.exit(0);
}

// ---------------------------------------------------------------- main

const applyKeys = intList("BENCH_APPLY_KEYS", process.env.BENCH_APPLY_KEYS, [100_000])[0] ?? 0;
const memoryKeys = intList("BENCH_MEMORY_KEYS", process.env.BENCH_MEMORY_KEYS, [100_000, 1_000_000]);
const RESULTS_DIR = process.env.BENCH_RESULTS_DIR || join(HERE, "results");
const tmpRoot = mkdtempSync(join(os.tmpdir(), "tollgate-apply-"));

/** Keys as the control plane sends them, in id order (as a snapshot lists them). */
function upserts(n) {
  return Array.from(
    { length: n },
    (_, i) => makeKey({ id: `ak_bench${String(i).padStart(18, "0")}`, name: `snap-${i}` }).upsert,
  );
}

function timed(fn) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const out = fn();
  const cpu = process.cpuUsage(cpu0);
  return { out, wall_ms: Math.round(performance.now() - t0), cpu_ms: Math.round((cpu.user + cpu.system) / 1000) };
}

const results = {
  date: new Date().toISOString(),
  node: process.version,
  source: revision(ROOT, ["gateway", "shared"]),
  loadavg_1m: { start: loadavg() },
  apply: null,
  memory: [],
};
say(`sync apply bench: Node ${process.version}, load ${results.loadavg_1m.start}`);
try {
  if (applyKeys > 0) {
    const keys = upserts(applyKeys);
    const dir = join(tmpRoot, "apply");
    const store = openStore(dir);
    const cache = new KeyCache(store, new KeyIndex(), clock);
    globalThis.gc?.();
    const first = timed(() =>
      cache.applySnapshot({ revision: 1, orgId: "org_bench", reason: SnapshotReason.NEW_GATEWAY, keys }),
    );
    const size = dbBytes(dir);
    globalThis.gc?.();
    const again = timed(() =>
      cache.applySnapshot({ revision: 2, orgId: "org_bench", reason: SnapshotReason.COMPACTED, keys }),
    );
    const auditRows = store.db.prepare("SELECT count(*) AS n FROM audit_log").get().n;
    store.close();
    results.apply = {
      keys: applyKeys,
      new_gateway: { wall_ms: first.wall_ms, cpu_ms: first.cpu_ms },
      unchanged_resnapshot: { wall_ms: again.wall_ms, cpu_ms: again.cpu_ms },
      gateway_db_mib: mib(size),
      audit_rows: auditRows,
    };
    say(
      `[apply ${applyKeys}] to an empty cache: ${first.wall_ms} ms wall, ${first.cpu_ms} ms CPU; ` +
        `unchanged again: ${again.wall_ms} ms wall, ${again.cpu_ms} ms CPU; gateway.db ${mib(size)} MiB, ${auditRows} audit rows`,
    );
  }
  for (const n of memoryKeys) {
    const dir = join(tmpRoot, `memory-${n}`);
    const store = openStore(dir);
    const now = Date.now();
    const write = store.db.transaction((from, to) => {
      for (let i = from; i < to; i++) {
        store.keys.upsert(benchStoredKey(i, generateApiKey(), now, { KeyStatus, EMPTY_POLICY }), 1);
      }
    });
    for (let i = 0; i < n; i += 50_000) write(i, Math.min(n, i + 50_000));
    store.meta.set("revision", "1");
    store.close();
    const out = JSON.parse(
      // With the node flags the gateway image starts with (its young generation's size counts here).
      execFileSync(
        process.execPath,
        [...gatewayNodeFlags(ROOT), "--expose-gc", fileURLToPath(import.meta.url), "--memory-child", dir],
        {
          env: process.env,
          maxBuffer: 1 << 20,
        },
      ).toString(),
    );
    const row = {
      keys: out.keys,
      load_ms: out.load_ms,
      load_cpu_ms: out.load_cpu_ms,
      heap_delta_mib: mib(out.heap_delta),
      rss_delta_mib: mib(out.rss_delta),
      rss_mib: mib(out.rss),
      heap_committed_mib: mib(out.heap_committed),
      heap_bytes_per_key: Math.round(out.heap_delta / out.keys),
      rss_bytes_per_key: Math.round(out.rss_delta / out.keys),
      gateway_db_mib: mib(dbBytes(dir)),
    };
    results.memory.push(row);
    say(
      `[memory ${n}] loaded in ${row.load_ms} ms: heap+external +${row.heap_delta_mib} MiB (${row.heap_bytes_per_key} B/key), ` +
        `RSS +${row.rss_delta_mib} MiB (${row.rss_bytes_per_key} B/key, process ${row.rss_mib} MiB, V8 heap committed ${row.heap_committed_mib} MiB), gateway.db ${row.gateway_db_mib} MiB`,
    );
    rmSync(dir, { recursive: true, force: true });
  }
} finally {
  rmSync(tmpRoot, { recursive: true, force: true });
  results.loadavg_1m.end = loadavg();
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `sync-apply-${results.date.replace(/\.\d+Z$/, "Z").replace(/:/g, "-")}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
  say(`results written to ${file}`);
}
