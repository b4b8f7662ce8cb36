#!/usr/bin/env node
// Fake OpenAI upstream for bench/quota-overshoot.mjs: plain node:http, keep-alive,
// and usage that depends on the request, so budgets and token limits have
// something real to settle against. Run as its own child process (fork): it
// reports its port over IPC ({ port }) and exits when its parent disconnects
// or on SIGTERM.
//
//   POST /v1/chat/completions → a chat.completion JSON whose usage is
//     prompt_tokens     = Σ over messages (3 + tokens(role) + tokens(content)) + 3
//                         (OpenAI's documented chat overhead for the gpt-4o family:
//                         3 per message, the role's own tokens, 3 to prime the reply),
//                         counted with the gateway's own o200k tokenizer
//                         (gateway/dist/quota/estimate.js), so only the overhead differs
//     completion_tokens = max_completion_tokens / max_tokens when the request sets one
//                         (the worst case a cap allows: the answer fills it), else
//                         UNCAPPED_COMPLETION_TOKENS (default 1536, more than the
//                         gateway's default reservation of 1024)
//   anything else → 404
//
// The answer text is short whatever completion_tokens says: only usage matters here.

import { createServer } from "node:http";
import { serveAsChild } from "./lib/child-server.mjs";
import { openAiErrorBody } from "@tollgate/testkit/openai-wire";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const ROOT = process.env.BUILD_ROOT;
if (!ROOT) throw new Error("BUILD_ROOT must name the built checkout");
const { countTextTokens, warmTokenizer } = await import(
  pathToFileURL(join(ROOT, "gateway", "dist", "quota", "estimate.js")).href
);
await warmTokenizer();

const UNCAPPED = Number(process.env.UNCAPPED_COMPLETION_TOKENS ?? 1536);
const CREATED = 1_700_000_000;
let seq = 0;

function textOf(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content))
    return content.map((p) => (typeof p === "string" ? p : typeof p?.text === "string" ? p.text : "")).join("\n");
  return "";
}

function usageOf(body) {
  let prompt = 3;
  for (const m of Array.isArray(body.messages) ? body.messages : []) {
    prompt += 3 + countTextTokens(String(m?.role ?? "")) + countTextTokens(textOf(m?.content));
  }
  const cap = [body.max_completion_tokens, body.max_tokens].find(
    (v) => typeof v === "number" && Number.isFinite(v) && v >= 0,
  );
  const completion = cap === undefined ? UNCAPPED : Math.floor(cap);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

const notFound = Buffer.from(JSON.stringify(openAiErrorBody("not found", "invalid_request_error")));
const badRequest = Buffer.from(JSON.stringify(openAiErrorBody("body is not JSON", "invalid_request_error")));

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const path = req.url === undefined ? "/" : req.url.split("?")[0];
    if (req.method !== "POST" || path !== "/v1/chat/completions") {
      res.writeHead(404, { "content-type": "application/json", "content-length": notFound.length }).end(notFound);
      return;
    }
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      res.writeHead(400, { "content-type": "application/json", "content-length": badRequest.length }).end(badRequest);
      return;
    }
    const out = Buffer.from(
      JSON.stringify({
        id: `chatcmpl-quota${(seq++).toString(36).padStart(12, "0")}`,
        object: "chat.completion",
        created: CREATED,
        model: typeof body.model === "string" ? body.model : "gpt-4o-mini",
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: "ok", refusal: null },
            logprobs: null,
            finish_reason: "stop",
          },
        ],
        usage: usageOf(body),
        service_tier: "default",
        system_fingerprint: "fp_quota",
      }),
    );
    res.writeHead(200, { "content-type": "application/json", "content-length": out.length }).end(out);
  });
});
serveAsChild(server, "quota upstream");
