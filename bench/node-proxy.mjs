#!/usr/bin/env node
// The floor for a Node.js proxy hop, for bench/gateway-throughput.mjs (target
// "node-proxy"): node:http in, the gateway's own undici Pool out (same version,
// same options as gateway/src/providers/http-upstream.ts), the body
// passed through chunk by chunk. No auth, no JSON parsing, no logs, no metrics.
// The gap between this and "direct" is what any Node proxy costs here; the gap
// between this and "tollgate" is Tollgate's own work.
//
// BARE=1 (target "bare"): the barest proxy doing the work any LLM proxy must do, nothing
// else: it also hashes the presented key (SHA-256), JSON.parses the request body, and
// JSON.parses the answer (the whole JSON answer, or each SSE `data:` event as it passes).
//
// Env: UPSTREAM (origin, e.g. http://127.0.0.1:1234), BUILD_ROOT (checkout whose
// gateway/ resolves undici), BARE. Reports its port over IPC ({ port }).

import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { answerUpstreamError, dispatchUpstream, gatewayPool, serveProxy } from "./lib/proxy-child.mjs";

const pool = gatewayPool();

const BARE = process.env.BARE === "1";
/** Parses every complete `data:` event of an SSE stream as it passes (BARE). */
function sseParser() {
  let partial = "";
  return (chunk) => {
    const text = partial + chunk.toString("utf8");
    const end = text.lastIndexOf("\n\n");
    if (end === -1) {
      partial = text;
      return;
    }
    partial = text.slice(end + 2);
    for (const line of text.slice(0, end).split("\n")) {
      if (line.startsWith("data: {")) JSON.parse(line.slice(6));
    }
  };
}

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    if (BARE) {
      createHash("sha256")
        .update(req.headers.authorization ?? "")
        .digest();
      JSON.parse(body.toString("utf8"));
    }
    let answer = null;
    let sse = null;
    dispatchUpstream(pool, req, body, {
      onRequestStart() {},
      onResponseStart(_controller, statusCode, headers) {
        const type = headers["content-type"] ?? "application/octet-stream";
        if (BARE) {
          if (type.includes("event-stream")) sse = sseParser();
          else answer = [];
        }
        res.writeHead(statusCode, { "content-type": type });
      },
      onResponseData(_controller, chunk) {
        if (sse) sse(chunk);
        else if (answer) answer.push(chunk);
        res.write(chunk);
      },
      onResponseEnd() {
        if (answer) JSON.parse(Buffer.concat(answer).toString("utf8"));
        res.end();
      },
      onResponseError(_controller, err) {
        answerUpstreamError(res, err);
      },
    });
  });
});
serveProxy(server, pool);
