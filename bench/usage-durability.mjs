#!/usr/bin/env node
// The cost of making an answer's usage durable before its last bytes go out
// (LogWriter.durable(): a group commit on the SQLite writer thread). Measures
// the wait one answer sees, alone and with C answers finishing at once, over
// the real LogWriter, writer thread and gateway.db schema (request-log row +
// usage outbox row per answer, as the request path writes them).
//
// Run: pnpm run build && node bench/usage-durability.mjs. Knobs:
// BENCH_DURABLE_SECONDS (3 per case), BENCH_DURABLE_CONCURRENCY (1,16,64).
// Timings only: nothing here asserts.

import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const load = (rel) => import(pathToFileURL(join(ROOT, rel)).href);
const { openStore } = await load("gateway/dist/db/store.js");
const { LogWriter } = await load("gateway/dist/db/request-log-writer.js");
const { OUTBOX_INSERT_SQL } = await load("gateway/dist/quota/usage-outbox.js");
const { createLogger } = await import("@tollgate/shared");

const seconds = Number(process.env.BENCH_DURABLE_SECONDS ?? 3);
const levels = (process.env.BENCH_DURABLE_CONCURRENCY ?? "1,16,64").split(",").map(Number);

const dir = mkdtempSync(join(os.tmpdir(), "tollgate-durable-"));
const store = openStore(dir);
const writer = new LogWriter(store, createLogger({ name: "bench", level: "silent" }));
const outbox = writer.statement(OUTBOX_INSERT_SQL);
let pendingUsage = 0;
writer.addFlushHook(() => {
  if (pendingUsage === 0) return;
  const n = pendingUsage;
  pendingUsage = 0;
  return {
    ops: [
      [
        outbox,
        [
          Date.now(),
          JSON.stringify([
            {
              keyId: "k",
              userId: "u",
              teamId: "t",
              day: "2026-01-01",
              requests: n,
              inputTokens: n,
              outputTokens: n,
              costMicroUsd: 0,
              lastUsedAtMs: 0,
            },
          ]),
        ],
      ],
    ],
    undo: () => (pendingUsage += n),
  };
});

const row = (i) => ({
  at: new Date().toISOString(),
  requestId: `req_${i}`,
  keyId: "key_1",
  model: "gpt-4o-mini",
  provider: "openai",
  status: 200,
  promptTokens: 10,
  completionTokens: 5,
  totalTokens: 15,
  cacheReadTokens: null,
  cacheWriteTokens: null,
  attempts: null,
  latencyMs: 1,
  stream: false,
  error: null,
  metadata: null,
  ephemeral: false,
  ephemeralTokenId: null,
  costUsd: null,
});

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
let seq = 0;
console.log(`usage durability barrier (LogWriter.durable), ${seconds}s per case, ${os.cpus().length} cores`);
for (const c of levels) {
  const waits = [];
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (performance.now() < until) {
        pendingUsage++;
        writer.request(row(seq++));
        const t = performance.now();
        await writer.durable();
        waits.push(performance.now() - t);
      }
    }),
  );
  waits.sort((a, b) => a - b);
  console.log(
    `  ${String(c).padStart(3)} answers finishing at once: ${Math.round(waits.length / seconds)} answers/s, wait p50 ${pct(waits, 50).toFixed(3)} ms, p99 ${pct(waits, 99).toFixed(3)} ms, max ${waits.at(-1).toFixed(3)} ms`,
  );
}
await writer.close();
store.close?.();
rmSync(dir, { recursive: true, force: true });
