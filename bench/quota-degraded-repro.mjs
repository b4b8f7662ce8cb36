#!/usr/bin/env node
// Repro for the even-share fallback (control plane unreachable), not a benchmark.
// Fixed since: the control plane reports the organization's connected gateways with
// every grant and the gateway keeps that count, so both runs now accept 300 + 300.
// What follows describes the bug as it was found.
//
// A gateway's QuotaManager.activeGateways is the activeGateways of its LAST
// successful Acquire, and the control plane counts only the gateways that used
// the counters of THAT batch (control-plane/src/quota/acquire.ts). The fallback
// then splits every counter by it (gateway/src/quota/quota-manager.ts). So a
// gateway whose last Acquire was the first of a window for a counter, or was
// about a counter only it uses, falls back to 1/1: the whole limit, alone.
//
// Two gateways, a key with rpm_limit 600, inside one UTC minute: 10 requests
// through gateway 2, then 10 through gateway 1, then (with `solo`) one request of
// another key through gateway 1 only; then SIGSTOP the control plane and offer
// 700 requests through each gateway. Stated bound: each gateway ≤ 600/2 = 300.
//
//   node bench/quota-degraded-repro.mjs        # gateway 2 falls back to 1/1
//   node bench/quota-degraded-repro.mjs solo   # both do
import { startChild, waitForIpcPort, waitForLogLine } from "@tollgate/testkit";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { randomBytes } from "node:crypto";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SOLO = process.argv[2] === "solo";
const tmp = mkdtempSync(join(os.tmpdir(), "qdemo-"));
const kids = [];
const base = { PATH: process.env.PATH, HOME: os.tmpdir(), NODE_ENV: "production" };
function start(name, script, env, ipc) {
  const e = startChild(name, script, { logDir: tmp, env, ipc });
  kids.push(e.child);
  e.child.logf = e.logFile;
  e.child.entry = e;
  return e.child;
}
const line = (c, pred) => waitForLogLine(c.entry, pred, 60_000, "the line awaited");
const up = start("up", join(ROOT, "bench/quota-upstream.mjs"), { ...base, BUILD_ROOT: ROOT }, true);
const upPort = await waitForIpcPort(up.entry);
const mk = randomBytes(32).toString("base64url");
const cp = start("cp", join(ROOT, "control-plane/dist/main.js"), {
  ...base,
  PROXY_MASTER_KEY: mk,
  DATA_DIR: join(tmp, "cp"),
  HOST: "127.0.0.1",
  PORT: "0",
  GRPC_PORT: "0",
  LOG_LEVEL: "info",
});
const l = await line(cp, (j) => j.msg === "control plane listening");
const adm = async (m, p, b) =>
  (
    await fetch(`http://127.0.0.1:${l.port}${p}`, {
      method: m,
      headers: { authorization: `Bearer ${mk}`, "content-type": "application/json" },
      body: b ? JSON.stringify(b) : undefined,
    })
  ).json();
const tok = (await adm("POST", "/internal/gateway-tokens", { name: "d" })).token;
const gws = [];
for (let i = 0; i < 2; i++) {
  const g = start("gw" + i, join(ROOT, "gateway/dist/main.js"), {
    ...base,
    CONTROL_PLANE_URL: `http://127.0.0.1:${l.grpcPort}`,
    GATEWAY_TOKEN: tok,
    GATEWAY_NAME: "g" + i,
    DATA_DIR: join(tmp, "g" + i),
    HOST: "127.0.0.1",
    PORT: "0",
    STATUS_PORT: "0",
    LOG_LEVEL: "info",
    OPENAI_BASE_URL: `http://127.0.0.1:${upPort}/v1`,
    OPENAI_API_KEY: "sk-x",
  });
  const gl = await line(g, (j) => j.msg === "gateway listening");
  for (;;) {
    const r = await fetch(`http://127.0.0.1:${gl.statusPort}/readyz`).catch(() => null);
    if (r?.status === 200) break;
    await sleep(50);
  }
  g.port = gl.port;
  g.agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  gws.push(g);
}
const user = (await adm("POST", "/internal/users", { external_id: "d@x.io" })).id;
const K = await adm("POST", "/internal/api-keys?wait_for_gateways=10s", {
  name: "shared",
  user_id: user,
  rpm_limit: 600,
});
const S = await adm("POST", "/internal/api-keys?wait_for_gateways=10s", {
  name: "solo",
  user_id: user,
  rpm_limit: 600,
});
const chat = (g, key) =>
  new Promise((res) => {
    const b = Buffer.from(JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }));
    const rq = http.request(
      {
        host: "127.0.0.1",
        port: g.port,
        method: "POST",
        path: "/v1/chat/completions",
        agent: g.agent,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "content-length": b.length },
      },
      (r) => {
        r.resume();
        r.on("end", () => res(r.statusCode));
      },
    );
    rq.on("error", () => res(0));
    rq.end(b);
  });
const now = Date.now();
const ms = now % 60000;
if (ms > 5000) await sleep(60000 - ms + 500);
const ok = [0, 0];
for (let i = 0; i < 10; i++) if ((await chat(gws[1], K.key)) === 200) ok[1]++;
for (let i = 0; i < 10; i++) if ((await chat(gws[0], K.key)) === 200) ok[0]++;
if (SOLO) console.log("solo key through gw1:", await chat(gws[0], S.key));
process.kill(cp.pid, "SIGSTOP");
console.log("control plane stopped (SIGSTOP) at", new Date().toISOString());
await Promise.all(
  [0, 1].map(async (g) => {
    let i = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (i++ < 700) if ((await chat(gws[g], K.key)) === 200) ok[g]++;
      }),
    );
  }),
);
console.log(
  `${SOLO ? "with" : "without"} the solo-key request: shared key (rpm 600) accepted gw1=${ok[0]} gw2=${ok[1]} total=${ok[0] + ok[1]} at ${new Date().toISOString()}`,
);
for (const g of gws)
  console.log(
    readFileSync(g.logf, "utf8")
      .split("\n")
      .filter((x) => x.includes("unreachable"))
      .map((x) => JSON.parse(x).msg)
      .join("\n"),
  );
process.kill(cp.pid, "SIGCONT");
for (const k of kids) k.kill("SIGKILL");
rmSync(tmp, { recursive: true, force: true });
process.exit(0);
