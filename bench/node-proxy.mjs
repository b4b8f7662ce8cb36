#!/usr/bin/env node
// The floor for a Node.js proxy hop, for bench/gateway-throughput.mjs (target
// "node-proxy"): node:http in, the gateway's own undici Pool out (same version,
// same options as gateway/src/providers/http-upstream.ts), the body
// passed through chunk by chunk. No auth, no JSON parsing, no logs, no metrics.
// The gap between this and "direct" is what any Node proxy costs here; the gap
// between this and "tollgate" is Tollgate's own work.
//
// Env: UPSTREAM (origin, e.g. http://127.0.0.1:1234), BUILD_ROOT (checkout whose
// gateway/ resolves undici). Reports its port over IPC ({ port }).

import { createServer } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";

// The gateway's own undici Pool (same file, version and options), driven the way the gateway
// drives it: dispatch() with a handler, no Readable body.
const requireGateway = createRequire(join(process.env.BUILD_ROOT, "gateway", "package.json"));
let Pool;
try {
  Pool = requireGateway("undici/lib/dispatcher/pool.js");
} catch {
  Pool = requireGateway("undici").Pool;
}
const pool = new Pool(process.env.UPSTREAM, {
  connections: null,
  keepAliveTimeout: 30_000,
  headersTimeout: 600_000,
  bodyTimeout: 600_000,
  connect: { timeout: 10_000 },
});

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    pool.dispatch(
      {
        method: req.method,
        path: req.url,
        headers: { "content-type": "application/json", authorization: req.headers.authorization ?? "" },
        body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks),
      },
      {
        onRequestStart() {},
        onResponseStart(_controller, statusCode, headers) {
          res.writeHead(statusCode, { "content-type": headers["content-type"] ?? "application/octet-stream" });
        },
        onResponseData(_controller, chunk) {
          res.write(chunk);
        },
        onResponseEnd() {
          res.end();
        },
        onResponseError(_controller, err) {
          if (!res.headersSent) res.writeHead(502, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: { message: String(err?.message ?? err) } }));
        },
      },
    );
  });
});
server.requestTimeout = 0;

function shutdown() {
  server.close(() => pool.destroy().finally(() => process.exit(0)));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2_000).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
process.on("disconnect", shutdown);

server.listen(0, "127.0.0.1", () => process.send?.({ port: server.address().port }));
