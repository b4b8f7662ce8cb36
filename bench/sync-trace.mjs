#!/usr/bin/env node
// Where the time of one key change goes: runs the built control plane and N
// gateways as separate processes with SYNC_TRACE=true, creates keys one at a time
// through the admin API (each waits for every gateway, the default
// read-your-writes), and splits each create into the stages every process
// stamped (commit, notify, stream wake, change-log read, encode, stream write,
// gateway receive, SQLite apply, index swap, ack sent/received/written,
// receipt). Then leaves the fleet idle and measures each process's CPU.
// Timings only: nothing here asserts. Stamps are performance.timeOrigin + now()
// in each process: comparable across processes of one host to a few µs.
//
// Run: pnpm bench:trace (builds first). Knobs: BENCH_GATEWAYS (3), BENCH_WRITES (60),
// BENCH_PAUSE_MS (30), BENCH_IDLE_S (60), DATABASE_URL (Postgres; else PGlite).

import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { createTempDir, machine, startControlPlane, startGateway, testDatabase } from "@tollgate/testkit";

const HERE = dirname(fileURLToPath(import.meta.url));
const GATEWAYS = Number(process.env.BENCH_GATEWAYS ?? 3);
const WRITES = Number(process.env.BENCH_WRITES ?? 60);
const PAUSE_MS = Number(process.env.BENCH_PAUSE_MS ?? 30);
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 60);
const MASTER_KEY = "sk-bench-trace-master-key-0123456789abcdef";
const now = () => performance.timeOrigin + performance.now();

/** Stamps of one process: rev → stage → [t] (a control plane stamps per stream). */
function stampsOf(proc) {
  const out = new Map();
  for (const line of proc.logLines()) {
    if (typeof line.sync_trace !== "string") continue;
    let byStage = out.get(line.rev);
    if (!byStage) out.set(line.rev, (byStage = new Map()));
    const list = byStage.get(line.sync_trace) ?? [];
    list.push({ t: line.t, gw: line.gw });
    byStage.set(line.sync_trace, list);
  }
  return out;
}

function pct(values, p) {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

/** CPU seconds (user + system) of a process, from /proc. */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());
}

const db = testDatabase("trace");
const tmp = await createTempDir("bench-trace-");
const procs = [];
try {
  const cp = await startControlPlane({
    masterKey: MASTER_KEY,
    dataDir: join(tmp.path, "cp"),
    ...(db ? { databaseUrl: db.url, databaseSchema: db.schema } : {}),
    env: { SYNC_TRACE: "true" },
    logFile: null,
  });
  procs.push(cp);
  const userId = (await cp.admin.post("/internal/users", { external_id: "trace@example.com" })).body.id;
  const token = (await cp.admin.post("/internal/gateway-tokens", { name: "trace" })).body.token;
  const gateways = [];
  for (let i = 0; i < GATEWAYS; i++) {
    const gw = await startGateway({
      controlPlaneUrl: cp.grpcUrl,
      token,
      name: `trace-${i}`,
      dataDir: join(tmp.path, `gw-${i}`),
      env: { SYNC_TRACE: "true" },
      logFile: null,
    });
    gateways.push(gw);
    procs.push(gw);
  }
  await Promise.all(gateways.map((g) => g.waitForReady(60_000)));

  const calls = [];
  for (let i = 0; i < WRITES; i++) {
    const start = now();
    const res = await cp.admin.post("/internal/api-keys", { name: `trace-${i}`, user_id: userId });
    const end = now();
    if (res.status !== 201) throw new Error(`create answered ${res.status}: ${JSON.stringify(res.body)}`);
    calls.push({
      rev: Number(res.headers.get("x-tollgate-revision")),
      start,
      end,
      sync: res.headers.get("x-tollgate-sync"),
    });
    await sleep(PAUSE_MS);
  }
  await sleep(200); // the last stamps reach the logs

  const cpStamps = stampsOf(cp);
  const gwStamps = gateways.map(stampsOf);
  const seg = new Map(); // segment name → durations (ms)
  const add = (name, from, to) => {
    if (from === undefined || to === undefined) return;
    if (!seg.has(name)) seg.set(name, []);
    seg.get(name).push(to - from);
  };
  const one = (m, stage) => m?.get(stage)?.[0]?.t;
  for (const c of calls) {
    const s = cpStamps.get(c.rev);
    const commit = one(s, "commit");
    add("1 admin request → commit (validate, transaction)", c.start, commit);
    add("2 commit → notify", commit, one(s, "notify"));
    const ackWritten = [];
    gwStamps.forEach((g) => {
      const gs = g.get(c.rev);
      const receive = one(gs, "receive");
      const gw = gs?.get("receive")?.[0]?.gw;
      const of = (stage) => (s?.get(stage) ?? []).find((x) => x.gw === gw)?.t;
      const write = of("stream_write");
      add("3 notify → stream wakes", one(s, "notify"), of("wake"));
      add("4 wake → change-log read (incl. SYNC_DEBOUNCE)", of("wake"), of("feed_read"));
      add("5 read → encode", of("feed_read"), of("encode"));
      add("6 encode → stream write", of("encode"), write);
      add("7 stream write → gateway receive (HTTP/2, decode)", write, receive);
      add("8 receive → SQLite apply (one transaction)", receive, one(gs, "sqlite_apply"));
      add("9 SQLite apply → index swap", one(gs, "sqlite_apply"), one(gs, "index_swap"));
      add("10 index swap → ack sent", one(gs, "index_swap"), one(gs, "ack_sent"));
      add("11 ack sent → ack received (gRPC unary)", one(gs, "ack_sent"), of("ack_received"));
      add("12 ack received → ack written (UPDATE)", of("ack_received"), of("ack_written"));
      add("commit → applied at this gateway", commit, one(gs, "index_swap"));
      add("ack written → ack answered at the gateway", of("ack_written"), one(gs, "ack_answered"));
      ackWritten.push(of("ack_written"));
    });
    const lastAck = Math.max(...ackWritten.filter((x) => x !== undefined));
    add("13 last ack written → receipt complete", lastAck, one(s, "receipt"));
    add("14 receipt → response at the client", one(s, "receipt"), c.end);
    add("receipt: commit → every gateway confirmed", commit, one(s, "receipt"));
    add(
      "commit → applied at every gateway",
      commit,
      Math.max(...gwStamps.map((g) => one(g.get(c.rev), "index_swap") ?? NaN)),
    );
    add("total: create call with read-your-writes", c.start, c.end);
  }
  const rows = [...seg.entries()].map(([name, v]) => ({ name, n: v.length, p50: pct(v, 50), p99: pct(v, 99) }));
  const incomplete = calls.filter((c) => !c.sync?.startsWith("complete")).length;

  // Idle: the fleet attached, nothing changing.
  const before = procs.map((p) => cpuSeconds(p.pid));
  const t0 = now();
  await sleep(IDLE_S * 1000);
  const elapsed = (now() - t0) / 1000;
  const idle = procs.map((p, i) => ({
    process: i === 0 ? "control plane" : `gateway ${i}`,
    cpu_pct_of_core: (100 * (cpuSeconds(p.pid) - before[i])) / elapsed,
  }));

  const load = os.loadavg();
  const result = {
    bench: "sync-trace",
    at: new Date().toISOString(),
    commit: execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: HERE }).toString().trim(),
    database: db ? "postgres" : "pglite",
    gateways: GATEWAYS,
    writes: WRITES,
    incomplete_receipts: incomplete,
    machine: machine(),
    load_average: load,
    segments_ms: rows,
    idle_s: elapsed,
    idle_cpu: idle,
  };
  mkdirSync(join(HERE, "results"), { recursive: true });
  const file = join(
    HERE,
    "results",
    `sync-trace-${result.at.replace(/:/g, "-").replace(/\.\d+Z$/, "Z")}-${result.database}.json`,
  );
  writeFileSync(file, JSON.stringify(result, null, 2));
  console.log(
    `${WRITES} creates, ${GATEWAYS} gateways, ${result.database}; load average ${load.map((x) => x.toFixed(1)).join(" ")}; receipts incomplete: ${incomplete}`,
  );
  console.log("| stage | n | p50 ms | p99 ms |\n| --- | --- | --- | --- |");
  for (const r of rows) console.log(`| ${r.name} | ${r.n} | ${r.p50?.toFixed(3)} | ${r.p99?.toFixed(3)} |`);
  console.log(
    `idle ${elapsed.toFixed(0)} s, CPU % of a core: ${idle.map((x) => `${x.process} ${x.cpu_pct_of_core.toFixed(2)}`).join(", ")}`,
  );
  console.log(`wrote ${file}`);
} finally {
  await Promise.all(procs.map((p) => p.stop()));
  await db?.drop();
  await tmp.cleanup();
}
