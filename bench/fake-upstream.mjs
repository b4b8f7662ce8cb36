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
//
// Sized answers (bench/gateway-sizes.mjs): a body whose first bytes hold
// `"user":"bench:a=<bytes>:c=<chunks>"` (before "stream" and the prompt) gets a
// completion whose content is <bytes> long, or a stream of <chunks> content
// events (one write each); only the first 512 bytes are searched then.

import { createServer } from "node:http";
import { serveAsChild } from "./lib/child-server.mjs";
import { modelList, openAiErrorBody, SSE_DONE, sseData } from "@tollgate/testkit/openai-wire";

const MODEL = "gpt-4o-mini";
const CREATED = 1_700_000_000;
const ID = "chatcmpl-bench0000000000000000000000";
const USAGE = { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 };
const PIECES = ["Hello", " from the", " fake upstream."];

/** A chat.completion answer with usage, its message `content`. */
const completionOf = (content) =>
  Buffer.from(
    JSON.stringify({
      id: ID,
      object: "chat.completion",
      created: CREATED,
      model: MODEL,
      choices: [
        { index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: "stop" },
      ],
      usage: USAGE,
      service_tier: "default",
      system_fingerprint: "fp_bench",
    }),
  );
const completion = completionOf(PIECES.join(""));

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
const SIZED = /"user"\s*:\s*"bench:a=(\d+):c=(\d+)"/;

/** Sized answers, built once per size: [completion, SSE events]. */
const sized = new Map();
function sizedAnswer(bytes, chunks) {
  const k = `${bytes}:${chunks}`;
  let a = sized.get(k);
  if (a) return a;
  const content = "lorem ipsum dolor sit amet, ".repeat(Math.ceil(bytes / 28)).slice(0, bytes);
  const body = completionOf(content);
  const piece = event({ ...chunkBase, choices: [choice({ content: " token" })], usage: null });
  const events = [
    sseEvents[0],
    ...Array.from({ length: chunks }, () => piece),
    ...sseEvents.slice(sseEvents.length - 3),
  ];
  a = [body, events];
  sized.set(k, a);
  return a;
}

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const path = req.url === undefined ? "/" : req.url.split("?")[0];
    if (req.method === "POST" && path === "/v1/chat/completions") {
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      const head = body.toString("latin1", 0, 512);
      const size = SIZED.exec(head);
      const [answer, events] = size ? sizedAnswer(Number(size[1]), Number(size[2])) : [completion, sseEvents];
      if (STREAM_TRUE.test(size ? head : body.toString("latin1"))) {
        res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
        for (const e of events) res.write(e);
        res.end();
      } else {
        res.writeHead(200, { "content-type": "application/json", "content-length": answer.length });
        res.end(answer);
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
