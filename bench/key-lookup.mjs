#!/usr/bin/env node
// Key lookup microbenchmark: the gateway's real in-memory auth path over an index
// of 100,000 keys, for valid, unknown and malformed keys, plus the in-memory part
// of a 100,000-key snapshot (compile every key, swap the index).
//
// Imports the built gateway code itself (gateway/dist/auth/*.js; not exported
// from the package root, so by file path): `authenticate` (an Authorization
// header) and `authenticateHeaders` (what the client handler does per request:
// presentedCredential over the three credential headers, then
// authenticateCredential), `KeyIndex` and `compileKey`. One thread, no I/O.
//
// Run: pnpm bench:lookup (builds first). Knobs: BENCH_LOOKUP_KEYS (100000),
// BENCH_LOOKUP_BATCH_MS (500, one timed batch), BENCH_LOOKUP_BATCHES (7),
// BENCH_BUILD_ROOT (another built checkout), BENCH_RESULTS_DIR.
// Timings only: nothing here asserts.

import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, resolve as resolvePath } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { revision } from "./lib/cli.mjs";
import { benchStoredKey } from "./lib/sync-keys.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = process.env.BENCH_BUILD_ROOT ? resolvePath(process.env.BENCH_BUILD_ROOT) : join(HERE, "..");
const load = (rel) => import(pathToFileURL(join(ROOT, rel)).href);

const { KeyIndex, compileKey, indexKeyOfApiKey } = await load("gateway/dist/auth/key-index.js");
const { authenticate, authenticateHeaders } = await load("gateway/dist/auth/authenticate.js");
const { EMPTY_POLICY } = await load("gateway/dist/auth/stored-key.js");
const { generateApiKey, KeyStatus, signEphemeralToken } = await load("shared/dist/index.js");
// Older checkouts (BENCH_BUILD_ROOT) have no memo: its cases are skipped there.
const { CredentialMemo } = await load("gateway/dist/auth/credential-memo.js").catch(() => ({}));

const N = Number(process.env.BENCH_LOOKUP_KEYS ?? 100_000);
const BATCH_MS = Number(process.env.BENCH_LOOKUP_BATCH_MS ?? 500);
const BATCHES = Number(process.env.BENCH_LOOKUP_BATCHES ?? 7);
const RESULTS_DIR = process.env.BENCH_RESULTS_DIR || join(HERE, "results");
// Distinct presented keys per case, cycled: enough that the valid ones hit all over the index.
const DISTINCT = 10_000;

const say = (s) => process.stderr.write(`${s}\n`);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---------------------------------------------------------------- the index

say(`key lookup bench: ${N.toLocaleString("en-US")} keys, Node ${process.version}, load ${os.loadavg()[0].toFixed(2)}`);
const t = performance.now();
const minted = Array.from({ length: N }, () => generateApiKey());
const mintMs = performance.now() - t;
const now = Date.now();
const stored = minted.map((m, i) => benchStoredKey(i, m, now, { KeyStatus, EMPTY_POLICY }));

// Snapshot, in-memory part: what KeyCache.applySnapshot does after its SQLite
// transaction (compile each key, then one replaceAll). Best of 3.
const snapshot = [];
let index;
for (let i = 0; i < 3; i++) {
  globalThis.gc?.();
  const t0 = performance.now();
  const compiled = stored.map(compileKey);
  const t1 = performance.now();
  const idx = new KeyIndex();
  idx.replaceAll({ keys: compiled, orgId: "org_bench" });
  const t2 = performance.now();
  snapshot.push({ compile_ms: t1 - t0, replace_all_ms: t2 - t1, total_ms: t2 - t0 });
  index = idx;
}
if (index.size !== N) throw new Error(`index holds ${index.size} keys, expected ${N}`);

// ---------------------------------------------------------------- presented keys

const pick = (i) => minted[Math.floor((i * 7919) % N)].key; // spread over the index
const valid = Array.from({ length: DISTINCT }, (_, i) => pick(i));
const unknown = Array.from({ length: DISTINCT }, () => generateApiKey().key); // well formed, right checksum, not in the index
const malformed = Array.from({ length: DISTINCT }, (_, i) => {
  const k = valid[i];
  // Wrong shapes clients really send: an OpenAI key, a truncated key, a key with a typo (bad checksum).
  switch (i % 3) {
    case 0:
      return `sk-proj-${k.slice(5)}`;
    case 1:
      return k.slice(0, 30);
    default:
      return k.slice(0, 10) + (k[10] === "a" ? "b" : "a") + k.slice(11);
  }
});
const asHeader = (keys) => keys.map((k) => `Bearer ${k}`);
const asHeaders = (keys) =>
  keys.map((k) => ({ host: "gateway", "content-type": "application/json", authorization: `Bearer ${k}` }));

// Each case must give the expected answer before it is timed.
const expect = (name, list, fn, ok) => {
  for (let i = 0; i < 30; i++) {
    const r = fn(list[i]);
    if (r.ok !== ok)
      throw new Error(`${name}: presented key ${i} gave ${JSON.stringify({ ok: r.ok, reason: r.reason })}`);
  }
};

// ---------------------------------------------------------------- timing

/** Runs fn over the inputs for ~BATCH_MS per batch; median ns/op over BATCHES batches (after one warm-up batch). */
function time(name, inputs, fn) {
  let sink = 0;
  const m = inputs.length;
  // Calibrate the number of ops per batch.
  let ops = 1000;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < ops; i++) sink += fn(inputs[i % m]).ok ? 1 : 0;
    const el = performance.now() - t0;
    if (el > BATCH_MS / 4) {
      ops = Math.max(1000, Math.round((ops * BATCH_MS) / el));
      break;
    }
    ops *= 4;
  }
  const nsPerOp = [];
  for (let b = 0; b <= BATCHES; b++) {
    const t0 = performance.now();
    for (let i = 0; i < ops; i++) sink += fn(inputs[(b * ops + i) % m]).ok ? 1 : 0;
    const el = performance.now() - t0;
    if (b > 0) nsPerOp.push((el * 1e6) / ops);
  }
  const med = median(nsPerOp);
  const row = {
    case: name,
    ns_per_op: Math.round(med),
    ops_per_s: Math.round(1e9 / med),
    min_ns: Math.round(Math.min(...nsPerOp)),
    max_ns: Math.round(Math.max(...nsPerOp)),
    ops_per_batch: ops,
    sink,
  };
  say(
    `  ${name.padEnd(44)} ${String(row.ns_per_op).padStart(6)} ns/op  ${row.ops_per_s.toLocaleString("en-US").padStart(11)} ops/s  (batches ${row.min_ns}–${row.max_ns} ns)`,
  );
  return row;
}

const cases = [
  ["authenticate: valid", asHeader(valid), (h) => authenticate(h, index, now), true],
  ["authenticate: unknown (well formed)", asHeader(unknown), (h) => authenticate(h, index, now), false],
  ["authenticate: malformed / bad checksum", asHeader(malformed), (h) => authenticate(h, index, now), false],
  ["authenticateHeaders (request path): valid", asHeaders(valid), (h) => authenticateHeaders(h, index, now), true],
  ["authenticateHeaders (request path): unknown", asHeaders(unknown), (h) => authenticateHeaders(h, index, now), false],
  [
    "authenticateHeaders (request path): malformed",
    asHeaders(malformed),
    (h) => authenticateHeaders(h, index, now),
    false,
  ],
];
// Ephemeral tokens of one signing key for keys of the index: the full check verifies an Ed25519
// signature. And a keep-alive connection presenting the same credential again: with a
// CredentialMemo (gateway/src/auth/credential-memo.ts) the request path compares three headers.
const signer = generateKeyPairSync("ed25519");
index.upsertSigningKey("sk_bench", signer.publicKey);
const iat = Math.floor(now / 1000);
const tokens = Array.from({ length: 1000 }, (_, i) => {
  const keyId = stored[Math.floor((i * 7919) % N)].id;
  return signEphemeralToken(
    { kid: "sk_bench", key_id: keyId, org_id: "org_bench", iat, exp: iat + 3600 },
    signer.privateKey,
  ).token;
});
cases.push([
  "authenticateHeaders (request path): ephemeral token",
  asHeaders(tokens),
  (h) => authenticateHeaders(h, index, now),
  true,
]);
if (CredentialMemo) {
  const presented = asHeaders(valid.slice(0, 1000));
  // Each request beside its connection's memo (a copy of its headers: another request's object).
  const connections = presented.map((h) => ({
    headers: { ...h },
    memo: CredentialMemo.of(h, index.version, authenticateHeaders(h, index, now)),
  }));
  const OK = { ok: true };
  const NO = { ok: false };
  cases.push([
    "same credential again on a connection (CredentialMemo)",
    connections,
    (c) => (c.memo.matches(c.headers, index.version, now) ? OK : NO),
    true,
  ]);
}
for (const [name, inputs, fn, ok] of cases) {
  expect(name, inputs, fn, ok);
}

say("timing (median of batches):");
const rows = cases.map(([name, inputs, fn]) => time(name, inputs, fn));
// References: the SHA-256 every well-formed key costs, and a bare Map hit.
const hashes = valid.map(indexKeyOfApiKey);
rows.push(
  time("reference: indexKeyOfApiKey (SHA-256) alone", valid, (k) => ({ ok: indexKeyOfApiKey(k).length === 32 })),
);
rows.push(time("reference: KeyIndex.find (Map.get) alone", hashes, (h) => ({ ok: index.find(h) !== undefined })));

const best = snapshot.reduce((a, b) => (b.total_ms < a.total_ms ? b : a));
say(
  `snapshot, in memory, ${N.toLocaleString("en-US")} keys (best of 3): compile ${best.compile_ms.toFixed(0)} ms + replaceAll ${best.replace_all_ms.toFixed(0)} ms = ${best.total_ms.toFixed(0)} ms` +
    ` (bench:sync's full apply, SQLite included: see bench/README.md)`,
);
say(
  `(minting ${N.toLocaleString("en-US")} keys for the index took ${mintMs.toFixed(0)} ms; heap used ${(process.memoryUsage().heapUsed / 1024 / 1024).toFixed(0)} MiB)`,
);

const startedAt = new Date();
const out = {
  bench: "key-lookup",
  started_at: startedAt.toISOString(),
  keys: N,
  distinct_presented_keys_per_case: DISTINCT,
  batch_ms: BATCH_MS,
  batches: BATCHES,
  node: process.version,
  cpu: /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? os.cpus()[0]?.model,
  nproc: os.availableParallelism?.() ?? os.cpus().length,
  loadavg_1m_end: Math.round(os.loadavg()[0] * 100) / 100,
  revision: revision(ROOT, ["gateway", "shared"]),
  lookups: rows.map(({ sink, ...r }) => r),
  snapshot_in_memory_ms: snapshot.map((s) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, Math.round(v)]))),
};
mkdirSync(RESULTS_DIR, { recursive: true });
const file = join(
  RESULTS_DIR,
  `key-lookup-${startedAt
    .toISOString()
    .replace(/:/g, "-")
    .replace(/\.\d+Z$/, "Z")}.json`,
);
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
say(`results: ${file}`);
