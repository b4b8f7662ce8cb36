#!/usr/bin/env node
// Prompt-token counter microbenchmark: the gateway's compact o200k_base counter
// (gateway/dist/quota/o200k-*.js, what estimate.ts loads) against gpt-tokenizer's
// o200k_base `countTokens` (what estimate.ts loaded before), each in its own
// child process so the two never share a heap.
//
// Each child (node --expose-gc) imports its code, takes a baseline after two
// forced GCs, loads the counter and reads process.memoryUsage() right after the
// load, after forced GCs, and again after all the timed counting (gpt-tokenizer
// keeps a merge cache of up to 100,000 pieces that grows as it counts). Then µs
// per count, median of BATCHES timed batches after a warm-up, for:
//   short      one ~30-token chat prompt, counted again and again (the hot path)
//   short×1000 1,000 different short prompts in turn (less help from caches)
//   medium     ~1,000 tokens of mixed prose, code and JSON
//   4096 chars the most estimate.ts ever counts at once (longer texts are sampled)
//   4096 CJK   4,096 characters of Chinese and Japanese with punctuation, a
//              sentence repeated (so its pieces come from either cache)
//   4096 CJK, no caches  pseudo-random CJK, both caches off: the merge algorithms alone
//
// Run: pnpm bench:tokenizer (builds first). Knobs: BENCH_TOKENIZER_BATCH_MS (300),
// BENCH_TOKENIZER_BATCHES (7), BENCH_BUILD_ROOT (another built checkout),
// BENCH_RESULTS_DIR. Timings only: nothing here asserts but that both count alike.

import { execFileSync, execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { dirname, join, resolve as resolvePath } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { machine } from "@tollgate/testkit";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = process.env.BENCH_BUILD_ROOT ? resolvePath(process.env.BENCH_BUILD_ROOT) : join(HERE, "..");
const BATCH_MS = Number(process.env.BENCH_TOKENIZER_BATCH_MS ?? 300);
const BATCHES = Number(process.env.BENCH_TOKENIZER_BATCHES ?? 7);
const RESULTS_DIR = process.env.BENCH_RESULTS_DIR || join(HERE, "results");
const IMPLEMENTATIONS = ["ours", "gpt-tokenizer"];

const say = (s) => process.stderr.write(`${s}\n`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mib = (bytes) => Math.round((bytes / 1024 / 1024) * 10) / 10;

// ---------------------------------------------------------------- the texts

const SHORT =
  "You are a helpful assistant. What's the weather like in Paris today, and should I bring an umbrella for my walk this afternoon? Please answer briefly.";

const CITIES = [
  "Paris",
  "Lisbon",
  "Osaka",
  "Nairobi",
  "Montréal",
  "São Paulo",
  "Reykjavík",
  "Chennai",
  "Hanoi",
  "Oslo",
];
const ASKS = [
  "bring an umbrella",
  "wear a coat",
  "take the train",
  "book a table",
  "leave early",
  "pack sunscreen",
  "rent a bike",
  "call ahead",
  "skip lunch",
  "buy tickets",
];
const TIMES = [
  "this afternoon",
  "tonight",
  "tomorrow morning",
  "on Friday",
  "at 7:30",
  "next week",
  "after work",
  "before noon",
  "on the 14th",
  "in 2 hours",
];
/** 1,000 different short prompts of the same shape. */
const SHORT_VARIED = Array.from(
  { length: 1000 },
  (_, i) =>
    `You are a helpful assistant. What's the weather like in ${CITIES[i % 10]} today, and should I ${ASKS[Math.floor(i / 10) % 10]} for my walk ${TIMES[Math.floor(i / 100) % 10]}? Please answer briefly. (#${i})`,
);

const PARAGRAPHS = [
  "The gateway estimates prompt tokens before each upstream call, so that a reservation holds roughly what the request will cost. The provider's usage settles the real count afterwards; the estimate only has to be close, cheap, and never in the way.",
  '```ts\nexport function maxOutputTokens(json: Record<string, unknown>): number | null {\n  for (const f of ["max_completion_tokens", "max_tokens", "max_output_tokens"]) {\n    const v = json[f];\n    if (typeof v === "number" && Number.isFinite(v) && v >= 0) return Math.floor(v);\n  }\n  return null;\n}\n```',
  JSON.stringify({
    model: "gpt-4o-mini",
    temperature: 0.2,
    messages: [
      { role: "system", content: "Answer briefly." },
      { role: "user", content: "Summarize the attached report in 3 bullet points." },
    ],
    tools: [
      {
        type: "function",
        function: {
          name: "lookup_order",
          parameters: {
            type: "object",
            properties: { order_id: { type: "string" }, include_items: { type: "boolean" } },
            required: ["order_id"],
          },
        },
      },
    ],
  }),
  "Q3 revenue grew 12.4% to $1,284,503 while costs fell 3.1%; headcount went from 212 to 245. We'll revisit the forecast on 2025-11-30, and they're confident it'll hold.",
  "Bonjour à tous ! Voici le résumé de la réunion d'hier : le déploiement est prévu pour jeudi, après la revue de sécurité. ¿Alguien tiene preguntas? Bitte bis Freitag antworten.",
  "- [x] rotate the signing key\n- [ ] bump undici to 7.30\n- [ ] add a test for the fallback path\n\n| metric | before | after |\n|---|---|---|\n| p50 | 0.41 ms | 0.36 ms |\n| RSS | 140 MB | 98 MB |",
];
const CJK =
  "我们的网关在每次上游调用之前估算提示令牌的数量，以便预留额度。東京は日本の首都です。ひらがなとカタカナ、そして漢字が混ざっています。";

const repeatTo = (parts, chars) => {
  let s = "";
  for (let i = 0; s.length < chars; i++) s += parts[i % parts.length] + "\n\n";
  return s.slice(0, chars);
};

/** 4,096 characters of CJK from a fixed pseudo-random stream: pieces of 4 to 27 characters between punctuation. */
function cjkStream(chars) {
  let x = 0x2545f491;
  const next = (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  let s = "";
  while (s.length < chars) {
    for (let k = 4 + next(24); k > 0; k--) s += String.fromCharCode(0x4e00 + next(3000));
    s += "，。、？"[next(4)];
  }
  return s.slice(0, chars);
}
const UNCACHED = { name: "4096 CJK, no caches", texts: [cjkStream(4096)] };

const TEXTS = [
  { name: "short", texts: [SHORT] },
  { name: "short×1000", texts: SHORT_VARIED },
  { name: "medium", texts: [repeatTo(PARAGRAPHS, 3400)] },
  { name: "4096 chars", texts: [repeatTo(PARAGRAPHS, 4096)] },
  { name: "4096 CJK", texts: [repeatTo([CJK], 4096)] },
];

// ---------------------------------------------------------------- a child

const ourModules = () =>
  Promise.all([
    import(pathToFileURL(join(ROOT, "gateway/dist/quota/o200k-tables.js")).href),
    import(pathToFileURL(join(ROOT, "gateway/dist/quota/o200k-counter.js")).href),
  ]);

/** gpt-tokenizer's ESM build, as estimate.ts imported it, resolved from the gateway package. */
function gptTokenizerUrl() {
  const pkg = createRequire(join(ROOT, "gateway/package.json")).resolve("gpt-tokenizer/package.json");
  return pathToFileURL(join(dirname(pkg), "esm/encoding/o200k_base.js")).href;
}

/** What the timed load does: ours reads and packs the ranks file, gpt-tokenizer's import builds its encoder. */
async function loader(impl) {
  if (impl === "ours") {
    const [{ loadO200kTables }, { createO200kCounter }] = await ourModules();
    return async () => createO200kCounter(await loadO200kTables());
  }
  const url = gptTokenizerUrl();
  return async () => (await import(url)).countTokens;
}

/** The same counter with its cache turned off. */
async function uncachedCounter(impl) {
  if (impl === "ours") {
    const [{ loadO200kTables }, { createO200kCounter }] = await ourModules();
    return createO200kCounter(await loadO200kTables(), { cacheSlots: 0 });
  }
  const m = await import(gptTokenizerUrl());
  m.setMergeCacheSize(0);
  return m.countTokens;
}

async function settle() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await sleep(50);
  }
}

function mem(base) {
  const m = process.memoryUsage();
  const out = { rss_mib: mib(m.rss), heap_used_mib: mib(m.heapUsed), array_buffers_mib: mib(m.arrayBuffers) };
  if (base) {
    out.rss_delta_mib = mib(m.rss - base.rss);
    out.heap_used_delta_mib = mib(m.heapUsed - base.heapUsed);
    out.array_buffers_delta_mib = mib(m.arrayBuffers - base.arrayBuffers);
  }
  return out;
}

function timeCounts(count, texts) {
  let sink = 0;
  let i = 0;
  const run = (ms) => {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    do {
      for (let k = 0; k < 50; k++) sink += count(texts[i++ % texts.length]);
      n += 50;
      t = performance.now();
    } while (t - t0 < ms);
    return ((t - t0) * 1000) / n;
  };
  run(BATCH_MS);
  const batches = Array.from({ length: BATCHES }, () => run(BATCH_MS));
  return {
    us_per_count: Math.round(median(batches) * 100) / 100,
    min_us: Math.round(Math.min(...batches) * 100) / 100,
    max_us: Math.round(Math.max(...batches) * 100) / 100,
    sink,
  };
}

async function child(impl) {
  if (typeof globalThis.gc !== "function") throw new Error("run the child with --expose-gc");
  const load = await loader(impl);
  await settle();
  const base = process.memoryUsage();
  const baseline = mem();
  const t0 = performance.now();
  const count = await load();
  const loadMs = performance.now() - t0;
  const afterLoad = mem(base);
  await settle();
  const afterGc = mem(base);
  const tokens = {};
  const timings = {};
  for (const { name, texts } of TEXTS) {
    tokens[name] = count(texts[0]);
    timings[name] = timeCounts(count, texts);
  }
  await settle();
  const afterCounting = mem(base);
  // The algorithms alone: both caches off, on a text whose pieces all need merging.
  const uncached = await uncachedCounter(impl);
  const { name, texts } = UNCACHED;
  tokens[name] = uncached(texts[0]);
  timings[name] = timeCounts(uncached, texts);
  return {
    impl,
    load_ms: Math.round(loadMs * 10) / 10,
    baseline,
    after_load: afterLoad,
    after_gc: afterGc,
    after_counting: afterCounting,
    tokens,
    timings,
  };
}

if (process.argv[2] === "child") {
  process.stdout.write(JSON.stringify(await child(process.argv[3])));
  process.exit(0);
}

// ---------------------------------------------------------------- the parent

function revision() {
  try {
    const git = (...args) =>
      execFileSync("git", args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    return {
      commit: git("rev-parse", "--short", "HEAD"),
      dirty: git("status", "--porcelain", "--", "gateway") !== "",
      build_root: ROOT,
    };
  } catch {
    return { commit: null, dirty: null, build_root: ROOT };
  }
}

const startedAt = new Date();
say(
  `tokenizer bench: Node ${process.version}, ${os.availableParallelism()} CPUs, load ${os.loadavg()[0].toFixed(2)}, batches ${BATCHES} × ${BATCH_MS} ms`,
);
const results = {};
for (const impl of IMPLEMENTATIONS) {
  say(`  ${impl}…`);
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--expose-gc", fileURLToPath(import.meta.url), "child", impl],
    {
      env: { ...process.env },
      maxBuffer: 1 << 20,
    },
  );
  results[impl] = JSON.parse(stdout);
}

const [ours, gpt] = IMPLEMENTATIONS.map((i) => results[i]);
for (const { name } of [...TEXTS, UNCACHED]) {
  if (ours.tokens[name] !== gpt.tokens[name])
    throw new Error(`${name}: ours counts ${ours.tokens[name]}, gpt-tokenizer ${gpt.tokens[name]}`);
}

const pad = (s, n) => String(s).padStart(n);
say("");
say(
  `memory (MiB, change from the child's own baseline; baseline RSS ours ${ours.baseline.rss_mib}, gpt-tokenizer ${gpt.baseline.rss_mib})`,
);
say(`  ${"".padEnd(28)} ${pad("ours", 22)} ${pad("gpt-tokenizer", 22)}`);
say(`  ${"load time (ms)".padEnd(28)} ${pad(ours.load_ms, 22)} ${pad(gpt.load_ms, 22)}`);
for (const [label, key] of [
  ["after load", "after_load"],
  ["after forced GC", "after_gc"],
  ["after all the counting + GC", "after_counting"],
]) {
  const cell = (r) => `RSS +${r[key].rss_delta_mib} heap +${r[key].heap_used_delta_mib}`;
  say(`  ${label.padEnd(28)} ${pad(cell(ours), 22)} ${pad(cell(gpt), 22)}`);
}
say(
  `  ${"array buffers after GC".padEnd(28)} ${pad(`+${ours.after_gc.array_buffers_delta_mib}`, 22)} ${pad(`+${gpt.after_gc.array_buffers_delta_mib}`, 22)}`,
);
say("");
say("µs per count (median of batches; ours ÷ gpt-tokenizer)");
for (const { name, texts } of [...TEXTS, UNCACHED]) {
  const o = ours.timings[name];
  const g = gpt.timings[name];
  say(
    `  ${name.padEnd(20)} ${pad(texts[0].length, 5)} chars ${pad(ours.tokens[name], 5)} tokens   ours ${pad(o.us_per_count.toFixed(2), 8)}   gpt-tokenizer ${pad(g.us_per_count.toFixed(2), 8)}   ×${(o.us_per_count / g.us_per_count).toFixed(2)}`,
  );
}

const out = {
  bench: "tokenizer",
  started_at: startedAt.toISOString(),
  machine: machine(),
  load_average: os.loadavg(),
  revision: revision(),
  batch_ms: BATCH_MS,
  batches: BATCHES,
  texts: Object.fromEntries(
    [...TEXTS, UNCACHED].map(({ name, texts }) => [
      name,
      { variants: texts.length, chars: texts[0].length, tokens: ours.tokens[name] },
    ]),
  ),
  results,
};
mkdirSync(RESULTS_DIR, { recursive: true });
const file = join(
  RESULTS_DIR,
  `tokenizer-${startedAt
    .toISOString()
    .replace(/:/g, "-")
    .replace(/\.\d+Z$/, "Z")}.json`,
);
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
say(`results: ${file}`);
