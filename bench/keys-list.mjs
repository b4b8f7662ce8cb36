#!/usr/bin/env node
// Keys list latency with 100,000 keys in one organization: what the dashboard's
// keys page asks for (first page, a sorted page, a filtered page, a search, the
// next page), timed over HTTP against an in-process control plane.
//
// The keys go in with one INSERT … SELECT generate_series (1,000 owners, request
// counts and statuses spread so sorts and filters have real work). Each case: 5 warm-up
// calls, then BENCH_KEYS_LIST_RUNS timed calls, one at a time, keep-alive.
//
// Run: pnpm bench:keys-list (PGlite), or with
// DATABASE_URL=postgres://postgres@127.0.0.1:5432/test for Postgres (a fresh
// schema, dropped at the end). Knobs: BENCH_KEYS_LIST_KEYS (100000),
// BENCH_KEYS_LIST_RUNS (50), BENCH_RESULTS_DIR. Timings only: nothing asserts.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createControlPlane, loadConfig } from "@tollgate/control-plane";
import { createLogger } from "@tollgate/shared";
import { machine } from "@tollgate/testkit";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
// The control plane's own kysely (the seeding statements) and pg (dropping the schema).
const cpRequire = createRequire(join(ROOT, "control-plane/package.json"));
const { sql } = await import(pathToFileURL(cpRequire.resolve("kysely")).href);
const pg = cpRequire("pg");

const N = Number(process.env.BENCH_KEYS_LIST_KEYS ?? 100_000);
const RUNS = Number(process.env.BENCH_KEYS_LIST_RUNS ?? 50);
const OWNERS = 1000;
const RESULTS_DIR = process.env.BENCH_RESULTS_DIR || join(HERE, "results");
const DATABASE_URL = process.env.DATABASE_URL || undefined;
const MASTER_KEY = "sk-bench-keys-list-master-0123456789abcdef";
const say = (s) => process.stderr.write(`${s}\n`);
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const round = (x) => Math.round(x * 100) / 100;

const dataDir = mkdtempSync(join(os.tmpdir(), "tollgate-bench-keys-list-"));
const schema = DATABASE_URL ? `bench_keys_${Math.random().toString(36).slice(2, 8)}` : "public";
const cp = createControlPlane(
  {
    ...loadConfig({ PROXY_MASTER_KEY: MASTER_KEY, HOST: "127.0.0.1", PORT: "0", GRPC_PORT: "0", LOG_LEVEL: "silent" }),
    databaseUrl: DATABASE_URL,
    databaseSchema: schema,
    dataDir,
  },
  { logger: createLogger({ name: "bench", level: "silent" }) },
);

async function cleanup() {
  await cp.stop();
  if (DATABASE_URL) {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.end();
  }
  rmSync(dataDir, { recursive: true, force: true });
}
process.on("SIGINT", () => cleanup().finally(() => process.exit(130)));

try {
  const { port } = await cp.start();
  const base = `http://127.0.0.1:${port}`;
  const { db, defaultOrgId: orgId } = cp.context;
  const database = DATABASE_URL ? "postgres" : "pglite";
  say(
    `keys list bench: ${N.toLocaleString("en-US")} keys, ${database}, Node ${process.version}, load ${os.loadavg()[0].toFixed(2)}`,
  );

  const t = performance.now();
  // One statement each, generated in the database: seeding through the API or the
  // repository would take minutes of the 1-minute budget on this machine.
  await db.transaction().execute(async (trx) => {
    await sql`insert into users (id, org_id, external_id)
      select 'user_' || lpad(i::text, 26, '0'), ${orgId}, 'owner-' || lpad(i::text, 4, '0') || '@example.com'
      from generate_series(0, ${OWNERS - 1}) i`.execute(trx);
    // Created a millisecond apart; request counts and statuses spread so sorts and filters have work.
    await sql`insert into api_keys (id, org_id, user_id, name, key_hash, key_prefix, status, created_at, updated_at, request_count)
      select 'ak_' || lpad(i::text, 26, '0'), ${orgId}, 'user_' || lpad((i % ${OWNERS})::text, 26, '0'),
        'bench-key-' || lpad(i::text, 6, '0'), decode(md5('bench' || i), 'hex'), 'sk-tg-' || substr(md5(i::text), 1, 8),
        case when i % 10 = 0 then 'inactive' else 'active' end,
        now() - interval '1 day' + i * interval '1 millisecond', now(), abs(hashtext(i::text)) % 1000000
      from generate_series(0, ${N - 1}) i`.execute(trx);
  });
  await sql`analyze`.execute(db);
  const seedMs = performance.now() - t;
  say(`seeded in ${(seedMs / 1000).toFixed(1)} s`);

  const get = async (path) => {
    const start = performance.now();
    const res = await fetch(base + path, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
    const body = await res.json();
    const ms = performance.now() - start;
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
    return { ms, body };
  };
  const first = await get("/internal/api-keys?limit=25");
  const cases = [
    ["first page (25, by created)", "/internal/api-keys?limit=25"],
    ["next page (cursor)", `/internal/api-keys?limit=25&cursor=${first.body.next_cursor}`],
    ["sorted by requests desc", "/internal/api-keys?limit=25&sort=requests&order=desc"],
    ["sorted by name", "/internal/api-keys?limit=25&sort=name"],
    ["sorted by owner", "/internal/api-keys?limit=25&sort=owner"],
    ["status=inactive, by requests desc", "/internal/api-keys?limit=25&status=inactive&sort=requests&order=desc"],
    ["search by name", "/internal/api-keys?limit=25&search=bench-key-0424"],
  ];
  const results = [];
  for (const [name, path] of cases) {
    for (let i = 0; i < 5; i++) await get(path);
    const ms = [];
    let rows = 0;
    for (let i = 0; i < RUNS; i++) {
      const r = await get(path);
      ms.push(r.ms);
      rows = r.body.data.length;
    }
    const row = {
      case: name,
      path,
      rows,
      runs: RUNS,
      p50_ms: round(pct(ms, 50)),
      p99_ms: round(pct(ms, 99)),
      max_ms: round(Math.max(...ms)),
    };
    results.push(row);
    say(
      `${name.padEnd(36)} p50 ${String(row.p50_ms).padStart(7)} ms  p99 ${String(row.p99_ms).padStart(7)} ms  (${rows} rows)`,
    );
  }

  let commit = null;
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
  } catch {}
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date()
    .toISOString()
    .replace(/:/g, "-")
    .replace(/\.\d+Z$/, "Z");
  const file = join(RESULTS_DIR, `keys-list-${stamp}-${database}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ bench: "keys-list", keys: N, owners: OWNERS, database, seed_ms: Math.round(seedMs), results, commit, machine: machine(), loadavg: os.loadavg(), at: new Date().toISOString() }, null, 2)}\n`,
  );
  say(`wrote ${file}`);
} finally {
  await cleanup();
}
