#!/usr/bin/env node
// Fake OpenAI upstream for bench/gateway-throughput.mjs: plain node:http, fixed
// answers built once, keep-alive. Run as its own child process (fork) so it never
// shares an event loop with a gateway or the load driver; it reports its port
// over IPC ({ port }) and exits when its parent disconnects or on SIGTERM.
//
//   POST /v1/chat/completions  → a fixed chat.completion JSON with usage, or, when
//                                the body asks for "stream": true, a fixed SSE
//                                stream (role, 3 content pieces, finish, usage,
//                                [DONE]; one write per event) in chunked encoding
//   GET  /v1/models            → a fixed model list
//   anything else              → 404
//
// It reads (and discards) every request body, never parses it as JSON (a
// byte search finds "stream": true), and never checks credentials.

import { createServer } from "node:http";
import { serveAsChild } from "./lib/child-server.mjs";
import { modelList, openAiErrorBody, SSE_DONE, sseData } from "@tollgate/testkit/openai-wire";

const MODEL = "gpt-4o-mini";
const CREATED = 1_700_000_000;
const ID = "chatcmpl-bench0000000000000000000000";
const USAGE = { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 };
const PIECES = ["Hello", " from the", " fake upstream."];

const completion = Buffer.from(
  JSON.stringify({
    id: ID,
    object: "chat.completion",
    created: CREATED,
    model: MODEL,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: PIECES.join(""), refusal: null },
        logprobs: null,
        finish_reason: "stop",
      },
    ],
    usage: USAGE,
    service_tier: "default",
    system_fingerprint: "fp_bench",
  }),
);

const chunkBase = {
  id: ID,
  object: "chat.completion.chunk",
  created: CREATED,
  model: MODEL,
  system_fingerprint: "fp_bench",
};
const event = (obj) => Buffer.from(sseData(obj));
const choice = (delta, finish = null) => ({ index: 0, delta, logprobs: null, finish_reason: finish });
const sseEvents = [
  event({ ...chunkBase, choices: [choice({ role: "assistant", content: "", refusal: null })], usage: null }),
  ...PIECES.map((p) => event({ ...chunkBase, choices: [choice({ content: p })], usage: null })),
  event({ ...chunkBase, choices: [choice({}, "stop")], usage: null }),
  event({ ...chunkBase, choices: [], usage: USAGE }),
  Buffer.from(SSE_DONE),
];

const models = Buffer.from(JSON.stringify(modelList([MODEL], { created: CREATED, ownedBy: "bench" })));
const notFound = Buffer.from(JSON.stringify(openAiErrorBody("not found", "invalid_request_error")));

const STREAM_TRUE = /"stream"\s*:\s*true/;

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const path = req.url === undefined ? "/" : req.url.split("?")[0];
    if (req.method === "POST" && path === "/v1/chat/completions") {
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      if (STREAM_TRUE.test(body.toString("latin1"))) {
        res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
        for (const e of sseEvents) res.write(e);
        res.end();
      } else {
        res.writeHead(200, { "content-type": "application/json", "content-length": completion.length });
        res.end(completion);
      }
    } else if (req.method === "GET" && path === "/v1/models") {
      res.writeHead(200, { "content-type": "application/json", "content-length": models.length });
      res.end(models);
    } else {
      res.writeHead(404, { "content-type": "application/json", "content-length": notFound.length });
      res.end(notFound);
    }
  });
});
serveAsChild(server, "fake upstream");
