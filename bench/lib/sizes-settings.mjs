// Payload-size bench (gateway-sizes.mjs): the BENCH_* knobs, the cells and their request bodies.
import { choiceList, intList, positive } from "./cli.mjs";

const UNITS = { k: 1024, m: 1024 * 1024 };

/** "32k" → 32768, "1m" → 1048576, "500" → 500. */
function bytesOf(name, text) {
  const m = /^(\d+)([km]?)$/i.exec(text.trim());
  if (!m) throw new Error(`${name}: ${JSON.stringify(text)} is not a size (e.g. 32k, 1m, 500)`);
  return Number(m[1]) * (UNITS[m[2].toLowerCase()] ?? 1);
}
const sizeList = (name, value, fallback) =>
  value
    ? value
        .split(",")
        .filter(Boolean)
        .map((v) => bytesOf(name, v))
    : fallback;

/**
 * Every cell is one request shape, run by every target in turn (interleaved rounds):
 *   prompt  P-byte prompt, 1 KB JSON answer          (BENCH_SIZES)
 *   answer  1 KB prompt, A-byte JSON answer          (BENCH_ANSWERS)
 *   stream  1 KB prompt, C content chunks, the client asking for usage   (BENCH_CHUNKS)
 *   streamg the same, the client not asking: the gateway adds include_usage and hides the usage chunk
 *   bigstream  the largest prompt, streamed 10 chunks, usage not asked (the body rewrite path)
 */
export function parseSizesEnv(env) {
  const kinds = choiceList(
    "BENCH_SIZE_KINDS",
    env.BENCH_SIZE_KINDS,
    ["prompt", "answer", "stream", "streamg", "bigstream"],
    ["prompt", "answer", "stream", "streamg", "bigstream"],
  );
  const prompts = sizeList("BENCH_SIZES", env.BENCH_SIZES, [1024, 32 * 1024, 256 * 1024, 1024 * 1024]);
  const answers = sizeList("BENCH_ANSWERS", env.BENCH_ANSWERS, [1024, 64 * 1024]);
  const chunks = intList("BENCH_CHUNKS", env.BENCH_CHUNKS, [10, 2000]);
  const cells = [];
  if (kinds.includes("prompt")) for (const p of prompts) cells.push({ kind: "prompt", prompt: p, answer: 1024 });
  if (kinds.includes("answer"))
    for (const a of answers.filter((a) => a !== 1024 || !kinds.includes("prompt") || !prompts.includes(1024)))
      cells.push({ kind: "answer", prompt: 1024, answer: a });
  for (const k of ["stream", "streamg"])
    if (kinds.includes(k))
      for (const c of chunks) cells.push({ kind: k, prompt: 1024, chunks: c, clientUsage: k === "stream" });
  if (kinds.includes("bigstream"))
    cells.push({ kind: "bigstream", prompt: Math.max(...prompts), chunks: 10, clientUsage: false });
  for (const c of cells) c.name = cellName(c);
  return {
    cells,
    // Seconds each target runs each cell per round (at least BENCH_SIZE_MIN_REQUESTS requests).
    cellS: positive("BENCH_SIZE_S", env.BENCH_SIZE_S, 2),
    minRequests: Math.floor(positive("BENCH_SIZE_MIN_REQUESTS", env.BENCH_SIZE_MIN_REQUESTS, 20)),
    rounds: Math.floor(positive("BENCH_ROUNDS", env.BENCH_ROUNDS, 2)),
    connections: intList("BENCH_SIZE_CONNECTIONS", env.BENCH_SIZE_CONNECTIONS, [1])[0],
    // 0: no soak. Else: this many seconds of small requests at 32 connections, RSS sampled over time.
    soakS: env.BENCH_SOAK_S ? positive("BENCH_SOAK_S", env.BENCH_SOAK_S, 0) : 0,
    soakConnections: intList("BENCH_SOAK_CONNECTIONS", env.BENCH_SOAK_CONNECTIONS, [32])[0],
  };
}

const kb = (n) => (n >= 1024 * 1024 ? `${n / (1024 * 1024)}MB` : n >= 1024 ? `${n / 1024}KB` : `${n}B`);
function cellName(c) {
  switch (c.kind) {
    case "prompt":
      return `prompt ${kb(c.prompt)}`;
    case "answer":
      return `answer ${kb(c.answer)}`;
    case "bigstream":
      return `stream ${kb(c.prompt)} prompt, no usage asked`;
    default:
      return `stream ${c.chunks} chunks${c.clientUsage ? "" : ", no usage asked"}`;
  }
}

/** An agent-like prompt: a system message, then alternating turns of source code, to `bytes` of JSON. */
export function bodyOf(cell) {
  const head = {
    model: "gpt-4o-mini",
    // Read by bench/fake-upstream.mjs (first 512 bytes): the answer's size.
    user: `bench:a=${cell.answer ?? 1024}:c=${cell.chunks ?? 0}`,
    ...(cell.chunks ? { stream: true } : {}),
    ...(cell.chunks && cell.clientUsage ? { stream_options: { include_usage: true } } : {}),
    max_tokens: 256,
  };
  const messages = [{ role: "system", content: "You are a coding agent. Answer briefly." }];
  const base = Buffer.byteLength(JSON.stringify({ ...head, messages }));
  let size = base;
  for (let i = 0; size < cell.prompt; i++) {
    const file =
      `File src/module-${i}.ts:\n` +
      'export function f(a: number, b: string): string {\n  return a + ":" + b + "\\"quoted\\"";\n}\n'.repeat(12);
    const m = { role: i % 2 ? "assistant" : "user", content: file };
    const add = Buffer.byteLength(JSON.stringify(m)) + 1;
    if (size + add > cell.prompt) {
      const room = Math.max(0, cell.prompt - size - Buffer.byteLength(JSON.stringify({ ...m, content: "" })) - 1);
      // Prose, not one long run of a letter: a run would be one huge piece for the tokenizer.
      messages.push({ ...m, content: "lorem ipsum dolor sit amet ".repeat(Math.ceil(room / 27)).slice(0, room) });
      break;
    }
    messages.push(m);
    size += add;
  }
  return Buffer.from(JSON.stringify({ ...head, messages }));
}
