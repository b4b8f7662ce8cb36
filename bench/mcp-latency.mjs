#!/usr/bin/env node
// MCP latency benchmark: the gateway's added latency per MCP tools/call,
// against calling the same MCP server directly.
//
// Runs a real control plane and one real gateway as child processes (built
// from control-plane/dist and gateway/dist), and in this process a real MCP
// server (the SDK's McpServer over Streamable HTTP, JSON answers) and a
// keep-alive HTTP client that sends sequential tools/call "echo" requests in an
// initialized session: directly, through /mcp/{server}, and through the
// aggregated /mcp. Prints median and p99 of each and the added latency.
// Timings only: nothing here asserts.
//
// Run: pnpm bench:mcp (builds first). Knobs: BENCH_MCP_CALLS (default 2000),
// BENCH_MCP_WARMUP (default 300).

import { writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createTempDir, machine, startControlPlane, startGateway } from "@tollgate/testkit";
import { FakeMcpServer } from "@tollgate/testkit/mcp";

const CALLS = Number(process.env.BENCH_MCP_CALLS ?? 2000);
const WARMUP = Number(process.env.BENCH_MCP_WARMUP ?? 300);
const MASTER_KEY = "sk-bench-mcp-master-key-0123456789abcdef";

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

/** One POST; resolves with the status, the session header and the body text. */
function post(url, headers, body) {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode, session: res.headers["mcp-session-id"], text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function session(url, headers) {
  const init = await post(
    url,
    headers,
    JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "1" } },
    }),
  );
  if (init.status !== 200) throw new Error(`initialize at ${url}: HTTP ${init.status} ${init.text}`);
  const h = {
    ...headers,
    ...(init.session ? { "mcp-session-id": init.session } : {}),
    "mcp-protocol-version": "2025-06-18",
  };
  await post(url, h, JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));
  return h;
}

async function measure(label, url, headers, tool) {
  const h = await session(url, headers);
  const times = [];
  for (let i = 0; i < WARMUP + CALLS; i++) {
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: i + 1,
      method: "tools/call",
      params: { name: tool, arguments: { text: "hello" } },
    });
    const t0 = performance.now();
    const res = await post(url, h, body);
    const dt = performance.now() - t0;
    if (res.status !== 200 || !res.text.includes("hello"))
      throw new Error(`${label}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
    if (i >= WARMUP) times.push(dt);
  }
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  return { label, median_ms: at(0.5), p99_ms: at(0.99) };
}

const tmp = await createTempDir("bench-mcp-");
const upstream = new FakeMcpServer({ name: "bench", jsonResponses: true });
let cp;
let gw;
try {
  await upstream.start();
  cp = await startControlPlane({ masterKey: MASTER_KEY, dataDir: join(tmp.path, "cp") });
  const user = (await cp.admin.post("/internal/users", { external_id: "bench@example.com" })).body.id;
  const token = (await cp.admin.post("/internal/gateway-tokens", { name: "bench" })).body.token;
  gw = await startGateway({ controlPlaneUrl: cp.grpcUrl, token, name: "bench", dataDir: join(tmp.path, "gw") });
  await gw.waitForReady(30_000);
  await cp.admin.post("/internal/mcp-servers", { name: "bench", url: upstream.url });
  const key = (
    await cp.admin.post("/internal/api-keys?wait_for_gateways=5s", {
      name: "bench",
      user_id: user,
      mcp_enabled: true,
      mcp_access_mode: "allow_all",
    })
  ).body.key;
  const auth = { authorization: `Bearer ${key}` };

  const results = [];
  results.push(await measure("direct", upstream.url, {}, "echo"));
  results.push(await measure("gateway /mcp/{server}", `${gw.url}/mcp/bench`, auth, "echo"));
  results.push(await measure("gateway /mcp (aggregated)", `${gw.url}/mcp`, auth, "bench__echo"));
  const direct = results[0];
  const file = join(
    import.meta.dirname,
    "results",
    `mcp-latency-${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}Z.json`,
  );
  writeFileSync(file, `${JSON.stringify({ machine: machine(), calls: CALLS, warmup: WARMUP, results }, null, 2)}\n`);
  console.log(`wrote ${file}`);
  console.log("| path | median ms | p99 ms | added median ms | added p99 ms |\n| --- | --- | --- | --- | --- |");
  for (const r of results) {
    console.log(
      `| ${r.label} | ${r.median_ms.toFixed(3)} | ${r.p99_ms.toFixed(3)} | ${(r.median_ms - direct.median_ms).toFixed(3)} | ${(r.p99_ms - direct.p99_ms).toFixed(3)} |`,
    );
  }
} finally {
  agent.destroy();
  await gw?.stop();
  await cp?.stop();
  await upstream.stop();
  await tmp.cleanup();
}
