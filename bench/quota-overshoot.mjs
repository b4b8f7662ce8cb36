#!/usr/bin/env node
// Fleet quota overshoot benchmark (issue #5): how far past its limit a key gets
// when one gateway takes 80 % of the traffic, with 2 and 4 gateways.
//
// Processes (each its own event loop):
//   - fake upstream   node bench/quota-upstream.mjs: chat.completion with usage that
//                     follows the request (OpenAI's prompt overhead; completion =
//                     max_tokens, or 1536 tokens when the request sets no cap)
//   - control plane   node control-plane/dist/main.js (PGlite in a temp dir, or a
//                     fresh schema on DATABASE_URL, dropped at the end)
//   - gateways        node gateway/dist/main.js × max(N), OPENAI_BASE_URL = the fake upstream
//   - this process    the load driver (node:http, keep-alive agents)
//
// Parts:
//   budget  for each N: a key with budget_usd B and a price override, driven by C
//           concurrent workers (80 % of requests to gateway 1, the rest spread over
//           the others) until every gateway has refused; twice: "capped" requests
//           (max_tokens 64, the answer fills it) and "uncapped" ones (no max_tokens:
//           the gateway reserves 1024 output tokens, the answer has 1536).
//           spent = Σ usage of the 200s × price; overshoot = (spent − B) / B;
//           the control plane's spend_usd is read back once reports settle.
//   rpm     for each N, one whole UTC minute: keys with rpm_limit L (600 and 6000 at
//           once) offered `BENCH_QUOTA_OFFERED` × L requests over the minute, paced
//           in 100 ms ticks, same 80 % skew. Load starts 300 ms after the minute
//           starts and stops 1.5 s before it ends, so every admission falls in that
//           window. overshoot = (accepted − L) / L, under-use = (L − accepted) / L.
//
// Run: pnpm bench:quota (builds first). Knobs: see README.md or `parseEnv` (lib/quota-settings.mjs).
// Measurements only: nothing asserts; the bounds are checked and reported.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { machine } from "@tollgate/testkit";
import { loadavg, revision, runBench } from "./lib/cli.mjs";
import { admin } from "./lib/services.mjs";
import { budgetRun, controlPlaneView } from "./lib/quota-budget.mjs";
import { chat, prompt } from "./lib/quota-client.mjs";
import { report } from "./lib/quota-report.mjs";
import { rpmWindow } from "./lib/quota-rpm.mjs";
import { cleanup } from "./lib/quota-runtime.mjs";
import { degradedLines, startControlPlane, startGateway, startUpstream } from "./lib/quota-services.mjs";
import { MODEL, ROOT, round1, say, settings } from "./lib/quota-settings.mjs";
import { state } from "./lib/quota-runtime.mjs";

// ---------------------------------------------------------------- main

async function main() {
  const startedAt = new Date();
  state.tmpDir = mkdtempSync(join(os.tmpdir(), "tollgate-quota-bench-"));
  const schema = settings.databaseUrl ? `bench_${randomBytes(5).toString("hex")}` : null;
  const results = {
    date: startedAt.toISOString(),
    database: settings.databaseUrl ? "postgres" : "pglite",
    machine: { ...machine(), loadavg_1m: { start: loadavg(), end: null } },
    source: revision(ROOT, ["gateway", "control-plane", "shared"]),
    settings: {
      ...settings,
      databaseUrl: settings.databaseUrl ? "(set)" : undefined,
      resultsDir: undefined,
      model: MODEL,
    },
    budget: [],
    rpm: [],
    degraded_log_lines: null,
    errors: [],
  };
  const maxN = Math.max(...settings.gateways);
  say(
    `tollgate quota overshoot bench: ${results.database}, ${maxN} gateways, ${results.machine.nproc} CPU ${results.machine.cpu}, Node ${process.version}, load ${results.machine.loadavg_1m.start}`,
  );

  ({ estimatePromptTokens: state.estimate } = await import(
    pathToFileURL(join(ROOT, "gateway", "dist", "quota", "estimate.js")).href
  ));
  const { warmTokenizer } = await import(pathToFileURL(join(ROOT, "gateway", "dist", "quota", "estimate.js")).href);
  await warmTokenizer();

  const upstream = await startUpstream();
  const cp = await startControlPlane(schema);
  if (schema) {
    state.dropSchema = async () => {
      const pg = createRequire(join(ROOT, "control-plane", "package.json"))("pg");
      const client = new pg.Client({ connectionString: settings.databaseUrl });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    };
  }
  const token = (await admin(cp, "POST", "/internal/gateway-tokens", { name: "quota-bench" })).token;
  const gateways = await Promise.all(Array.from({ length: maxN }, (_, i) => startGateway(cp, token, upstream.url, i)));
  say(`control plane and ${maxN} gateways ready`);
  const price = await admin(cp, "PUT", `/internal/model-prices/openai/${MODEL}`, {
    input_usd_per_mtok: settings.inputPrice,
    output_usd_per_mtok: settings.outputPrice,
  });
  results.price = price;
  const userId = (
    await admin(cp, "POST", "/internal/users", {
      external_id: `quota-bench-${randomBytes(4).toString("hex")}@example.com`,
    })
  ).id;
  const ctx = {
    cp,
    gateways,
    userId,
    errors: results.errors,
    degraded: () => gateways.reduce((a, gw) => a + degradedLines(gw), 0),
  };

  // Warm-up, and the gateways' tokenizer (loaded on the first token-limited request; heuristic until then):
  // a key with a huge token limit, a few requests through every gateway, then check a 200.
  const warm = await admin(cp, "POST", "/internal/api-keys?wait_for_gateways=10s", {
    name: "quota-bench-warmup",
    user_id: userId,
    tpm_limit: 1_000_000_000,
  });
  for (let round = 0; round < 3; round++) {
    const rs = await Promise.all(
      gateways.map((gw, g) =>
        chat(gw, warm.key, { model: MODEL, messages: [{ role: "user", content: prompt(g) }], max_tokens: 8 }, true),
      ),
    );
    for (const r of rs)
      if (r.status !== 200) throw new Error(`warm-up request answered ${r.status}: ${JSON.stringify(r.json)}`);
    await sleep(700);
  }

  try {
    if (settings.parts.includes("budget")) {
      for (const n of settings.gateways) {
        results.budget.push(await budgetRun(ctx, n, "capped"));
        for (let run = 1; run <= settings.uncappedRuns; run++)
          results.budget.push(await budgetRun(ctx, n, "uncapped", run));
      }
    }
    if (settings.parts.includes("rpm")) {
      for (const n of settings.gateways) results.rpm.push(...(await rpmWindow(ctx, n)));
    }
    if (results.budget.length) {
      say("waiting for the control plane's spend to settle…");
      await controlPlaneView(ctx, results.budget);
    }
  } finally {
    results.degraded_log_lines = Object.fromEntries(gateways.map((gw) => [gw.name, degradedLines(gw)]));
  }
  results.machine.loadavg_1m.end = loadavg();
  results.finished_at = new Date().toISOString();
  results.total_s = round1((Date.now() - startedAt.getTime()) / 1000);

  say("");
  console.log(
    `\nTollgate fleet quota overshoot (${results.database}, skew ${settings.skew * 100} % to gateway 1, load ${results.machine.loadavg_1m.start} → ${results.machine.loadavg_1m.end})\n`,
  );
  console.log(report(results));
  const degraded = Object.values(results.degraded_log_lines).reduce((a, b) => a + b, 0);
  console.log(
    `\n"quota service unreachable" log lines on the gateways: ${degraded}${degraded ? ` ${JSON.stringify(results.degraded_log_lines)}` : ""}`,
  );
  for (const e of results.errors) console.log(`error: ${e}`);
  mkdirSync(settings.resultsDir, { recursive: true });
  const file = join(
    settings.resultsDir,
    `quota-overshoot-${startedAt
      .toISOString()
      .replace(/:/g, "-")
      .replace(/\.\d+Z$/, "Z")}-${results.database}.json`,
  );
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\ntotal ${results.total_s} s; results: ${file}`);
}

await runBench("quota overshoot bench", main, cleanup, say);
