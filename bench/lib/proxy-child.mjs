// What node-proxy.mjs and same-work-proxy.mjs share: the gateway's own undici Pool (same file,
// version and options, from BUILD_ROOT's gateway/), driven the way the gateway drives it
// (dispatch() with a handler, no Readable body), and the life of the child process.

import { createRequire } from "node:module";
import { join } from "node:path";

/** A require() that resolves as the gateway package of BUILD_ROOT does. */
export const requireGateway = createRequire(join(process.env.BUILD_ROOT, "gateway", "package.json"));

/** The gateway's upstream Pool to UPSTREAM. */
export function gatewayPool() {
  let Pool;
  try {
    Pool = requireGateway("undici/lib/dispatcher/pool.js");
  } catch {
    Pool = requireGateway("undici").Pool;
  }
  return new Pool(process.env.UPSTREAM, {
    connections: null,
    keepAliveTimeout: 30_000,
    headersTimeout: 600_000,
    bodyTimeout: 600_000,
    connect: { timeout: 10_000 },
  });
}

/** Sends the client's request (its bytes, its key) upstream; `handler` (undici's dispatch handler) gets the answer. */
export function dispatchUpstream(pool, req, body, handler) {
  pool.dispatch(
    {
      method: req.method,
      path: req.url,
      headers: { "content-type": "application/json", authorization: req.headers.authorization ?? "" },
      body,
    },
    handler,
  );
}

/** An upstream failure as a 502, whatever was sent before. */
export function answerUpstreamError(res, err) {
  if (!res.headersSent) res.writeHead(502, { "content-type": "application/json" });
  res.end(JSON.stringify({ error: { message: String(err?.message ?? err) } }));
}

/** Listens on any port of 127.0.0.1, reports it over IPC ({ port }), and stops with the parent (then runs `cleanup`). */
export function serveProxy(server, pool, cleanup = () => {}) {
  server.requestTimeout = 0;
  const exit = () => {
    cleanup();
    process.exit(0);
  };
  function shutdown() {
    server.close(() => pool.destroy().finally(exit));
    server.closeAllConnections();
    setTimeout(exit, 2_000).unref();
  }
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  process.on("disconnect", shutdown);
  server.listen(0, "127.0.0.1", () => process.send?.({ port: server.address().port }));
}
