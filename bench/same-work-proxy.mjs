#!/usr/bin/env node
// The smallest Node proxy doing the gateway's per-request work, for bench/gateway-throughput.mjs
// (target "same-work"): what the bare proxy does (node:http in, the gateway's undici Pool out,
// JSON.parse of request and answer), plus, written as directly as we could:
//   - auth: SHA-256 of the presented key, looked up in a Map of 1,000 keys;
//   - quota: a per-key token window checked and reserved before the call, settled after;
//   - usage journal: one line per answer (crc32 + JSON), all lines of an event-loop turn in one
//     write(2) on an O_APPEND file, awaited before the answer's last bytes;
//   - request log: a 22-column row per request, sent in batches (16 rows or 25 ms, at least 5 ms
//     apart) with postMessage to a worker thread that inserts them with better-sqlite3, one
//     transaction per batch (WAL);
//   - metrics: prom-client, a counter by route and status and a duration histogram (children
//     cached), an upstream-duration histogram, token counters;
//   - an x-request-id, and the usage read from the answer.
// The gap between this and "bare" is the cost of that work done well in Node; the gap between
// this and "tollgate" is what the gateway's structure adds on top.
//
// Env: UPSTREAM (origin), BUILD_ROOT (checkout whose gateway/ resolves undici, better-sqlite3
// and prom-client). Reports its port over IPC ({ port }).

import { createHash, randomBytes } from "node:crypto";
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import { crc32 } from "node:zlib";
import { answerUpstreamError, dispatchUpstream, gatewayPool, requireGateway, serveProxy } from "./lib/proxy-child.mjs";

const { Counter, Histogram, Registry } = requireGateway("prom-client");
const sqlitePath = requireGateway.resolve("better-sqlite3");
const pool = gatewayPool();
const dir = mkdtempSync(join(tmpdir(), "tollgate-same-work-"));

// ---- auth: any presented key is accepted, but looked up as the gateway does.
const keys = new Map();
const keyRecord = (id) => ({ id, userId: "user_1", teamId: "team_1", tokensUsed: 0, windowEndsAt: 0 });
for (let i = 0; i < 1000; i++) keys.set(createHash("sha256").update(`sk-${i}`).digest("hex"), keyRecord(`ak_${i}`));
const anyKey = keyRecord("ak_bench");

// ---- quota: a tokens-per-minute window per key.
const TPM = 1_000_000_000;
function reserve(key, tokens) {
  const now = Date.now();
  if (now >= key.windowEndsAt) {
    key.windowEndsAt = now + 60_000;
    key.tokensUsed = 0;
  }
  if (key.tokensUsed + tokens > TPM) return false;
  key.tokensUsed += tokens;
  return true;
}

// ---- usage journal: one write(2) per event-loop turn.
const journalFd = openSync(join(dir, "journal.log"), constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND);
let lines = [];
let release = null;
let barrier = null;
function journal(values) {
  const json = JSON.stringify(values);
  lines.push(`${crc32(json).toString(16).padStart(8, "0")} ${json}\n`);
  if (barrier === null) {
    barrier = new Promise((r) => {
      release = r;
    });
    setImmediate(() => {
      writeSync(journalFd, lines.join(""));
      lines = [];
      const r = release;
      barrier = null;
      r();
    });
  }
  return barrier;
}

// ---- request log: batches to a SQLite writer thread.
const worker = new Worker(
  `const { parentPort, workerData } = require("node:worker_threads");
   const Database = require(workerData.sqlitePath);
   const db = new Database(workerData.file);
   db.pragma("journal_mode = WAL");
   db.pragma("synchronous = NORMAL");
   db.exec("CREATE TABLE request_log (" + Array.from({ length: 22 }, (_, i) => "c" + i).join(", ") + ")");
   const insert = db.prepare("INSERT INTO request_log VALUES (" + Array(22).fill("?").join(", ") + ")");
   const batch = db.transaction((rows) => { for (const r of rows) insert.run(r); });
   parentPort.on("message", (m) => { batch(m.rows); parentPort.postMessage(m.id); });`,
  { eval: true, workerData: { sqlitePath, file: join(dir, "log.db") } },
);
worker.unref();
let rows = [];
let lastSend = 0;
let timer = null;
let batchId = 0;
function sendRows() {
  timer = null;
  if (rows.length === 0) return;
  worker.postMessage({ id: ++batchId, rows });
  rows = [];
  lastSend = performance.now();
}
function logRow(row) {
  rows.push(row);
  if (rows.length >= 16) {
    const wait = Math.max(0, lastSend + 5 - performance.now());
    if (timer === null || wait === 0) {
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(sendRows, wait);
    }
  } else if (timer === null) timer = setTimeout(sendRows, 25);
}

// ---- metrics.
const registry = new Registry();
const requests = new Counter({
  name: "requests_total",
  help: "h",
  labelNames: ["route", "status"],
  registers: [registry],
});
const duration = new Histogram({ name: "request_seconds", help: "h", labelNames: ["route"], registers: [registry] });
const upstreamSeconds = new Histogram({
  name: "upstream_seconds",
  help: "h",
  labelNames: ["provider"],
  registers: [registry],
});
const tokens = new Counter({
  name: "tokens_total",
  help: "h",
  labelNames: ["provider", "type"],
  registers: [registry],
});
const ok200 = requests.labels("chat_completions", "200");
const chatDuration = duration.labels("chat_completions");
const openaiSeconds = upstreamSeconds.labels("openai");
const inputTokens = tokens.labels("openai", "input");
const outputTokens = tokens.labels("openai", "output");

let seq = 0;
const epoch = randomBytes(6).toString("hex");

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const started = performance.now();
  const requestId = `req_${epoch}${(seq++).toString(36)}`;
  res.setHeader("x-request-id", requestId);
  const presented = (req.headers.authorization ?? "").replace(/^Bearer /, "");
  const key = keys.get(createHash("sha256").update(presented).digest("hex")) ?? anyKey;
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    const json = JSON.parse(body.toString("utf8"));
    const reserved = 1024 + (json.max_tokens ?? 1024);
    if (!reserve(key, reserved)) {
      res.writeHead(429).end();
      return;
    }
    const answer = [];
    let status = 0;
    let type = "application/json";
    const calledAt = performance.now();
    dispatchUpstream(pool, req, body, {
      onRequestStart() {},
      onResponseStart(_controller, statusCode, headers) {
        status = statusCode;
        type = headers["content-type"] ?? type;
      },
      onResponseData(_controller, chunk) {
        answer.push(chunk);
      },
      onResponseEnd() {
        const bytes = answer.length === 1 ? answer[0] : Buffer.concat(answer);
        const usage = JSON.parse(bytes.toString("utf8")).usage ?? {};
        key.tokensUsed += (usage.total_tokens ?? 0) - reserved;
        openaiSeconds.observe((performance.now() - calledAt) / 1000);
        const at = Date.now();
        journal([
          requestId,
          key.id,
          key.userId,
          key.teamId,
          at,
          usage.prompt_tokens ?? 0,
          usage.completion_tokens ?? 0,
          0,
        ]).then(() => {
          res.writeHead(status, { "content-type": type, "content-length": bytes.length });
          res.end(bytes);
          const seconds = (performance.now() - started) / 1000;
          ok200.inc();
          chatDuration.observe(seconds);
          if (usage.prompt_tokens) inputTokens.inc(usage.prompt_tokens);
          if (usage.completion_tokens) outputTokens.inc(usage.completion_tokens);
          logRow([
            new Date(at).toISOString(),
            requestId,
            key.id,
            json.model,
            status,
            usage.prompt_tokens ?? null,
            usage.completion_tokens ?? null,
            usage.total_tokens ?? null,
            seconds * 1000,
            0,
            null,
            null,
            0,
            null,
            "openai",
            null,
            null,
            null,
            null,
            null,
            null,
            null,
          ]);
        });
      },
      onResponseError(_controller, err) {
        answerUpstreamError(res, err);
      },
    });
  });
});
serveProxy(server, pool, () => {
  closeSync(journalFd);
  rmSync(dir, { recursive: true, force: true });
});
