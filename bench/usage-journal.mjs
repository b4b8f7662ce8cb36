#!/usr/bin/env node
// The usage journal's cost per request (issue 22): CPU time (process.cpuUsage, user + system)
// and wall time of UsageJournal.append, the one write(2) each settled request makes, on a file
// in BENCH_JOURNAL_DIR (default: the OS temp dir; use the gateway's DATA_DIR's file system).
// Without and with fdatasync per line (the power-loss option). Run after `pnpm exec tsc -b`:
//   node bench/usage-journal.mjs
// Knobs: BENCH_JOURNAL_APPENDS (200000), BENCH_JOURNAL_FSYNC_APPENDS (2000), BENCH_JOURNAL_ROUNDS (5),
// BENCH_RESULTS_DIR. Writes bench/results/usage-journal-<UTC time>.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadavg, positive, revision } from "./lib/cli.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
const { UsageJournal } = await import(join(ROOT, "gateway", "dist", "db", "usage-journal.js"));
const env = process.env;
const appends = Math.floor(positive("BENCH_JOURNAL_APPENDS", env.BENCH_JOURNAL_APPENDS, 200_000));
const fsyncAppends = Math.floor(positive("BENCH_JOURNAL_FSYNC_APPENDS", env.BENCH_JOURNAL_FSYNC_APPENDS, 2_000));
const rounds = Math.floor(positive("BENCH_JOURNAL_ROUNDS", env.BENCH_JOURNAL_ROUNDS, 5));
const quiet = { warn() {}, error() {}, info() {} };
// Ids as long as real ones: the line is what a request writes.
const usage = {
  keyId: "ak_01JE5Q7Z3V9K2M8X4N6P0R1S2T",
  userId: "user_01JE5Q7Z3V9K2M8X4N6P0R1S2T",
  teamId: "team_01JE5Q7Z3V9K2M8X4N6P0R1S2T",
  atMs: Date.now(),
  inputTokens: 1234,
  outputTokens: 567,
  costMicroUsd: 8901,
};

function measure(fsync, n) {
  const dir = mkdtempSync(join(env.BENCH_JOURNAL_DIR ?? os.tmpdir(), "tollgate-journal-bench-"));
  const journal = new UsageJournal(dir, { logger: quiet, fsync });
  journal.recover({ segment: 0, offset: 0 });
  for (let i = 0; i < Math.min(n, 10_000); i++) journal.append(usage);
  const out = [];
  for (let r = 0; r < rounds; r++) {
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      journal.append(usage);
      if ((i & 1023) === 0) journal.rotateIfLarge();
    }
    const cpu = process.cpuUsage(cpu0);
    const wallUs = Number(process.hrtime.bigint() - t0) / 1e3;
    journal.committed(journal.position());
    out.push({
      cpu_us: (cpu.user + cpu.system) / n,
      user_us: cpu.user / n,
      system_us: cpu.system / n,
      wall_us: wallUs / n,
    });
  }
  journal.close();
  rmSync(dir, { recursive: true, force: true });
  const median = (k) => out.map((o) => o[k]).sort((a, b) => a - b)[Math.floor(out.length / 2)];
  return { appends: n, rounds: out, median: { cpu_us: median("cpu_us"), wall_us: median("wall_us") } };
}

const load = loadavg();
const plain = measure(false, appends);
const synced = measure(true, fsyncAppends);
const fmt = (m) => `CPU ${m.median.cpu_us.toFixed(2)} µs, wall ${m.median.wall_us.toFixed(2)} µs per append`;
console.log(`usage journal, median of ${rounds} rounds (load ${load}):`);
console.log(`  write(2) only:        ${fmt(plain)}`);
console.log(`  write(2) + fdatasync: ${fmt(synced)}`);
const resultsDir = env.BENCH_RESULTS_DIR || join(HERE, "results");
mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, `usage-journal-${new Date().toISOString().slice(0, 19).replaceAll(":", "-")}Z.json`);
writeFileSync(
  file,
  `${JSON.stringify(
    {
      bench: "usage-journal",
      at: new Date().toISOString(),
      node: process.version,
      cpu: os.cpus()[0]?.model,
      load_before: load,
      load_after: loadavg(),
      source: revision(ROOT, ["gateway"]),
      journal_dir_fs: env.BENCH_JOURNAL_DIR ?? os.tmpdir(),
      plain,
      fdatasync: synced,
    },
    null,
    2,
  )}\n`,
);
console.log(`results: ${file}`);
