// Helpers of the deployment checks (test-deploy.mjs, test-chart.mjs): processes, ports, a fake
// OpenAI upstream, polling, a step log. Plain Node (no vitest): these checks build and run
// container images and are not part of `pnpm test`.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";

const t0 = performance.now();
const steps = [];

/** Elapsed seconds since the script started, for progress lines. */
export function elapsed() {
  return ((performance.now() - t0) / 1000).toFixed(1).padStart(6);
}

export function log(message) {
  process.stdout.write(`[${elapsed()}s] ${message}\n`);
}

/** Runs `fn` as a named step: prints its start, its duration, and records it for the summary. */
export async function step(name, fn) {
  log(`▶ ${name}`);
  const start = performance.now();
  try {
    const value = await fn();
    const seconds = (performance.now() - start) / 1000;
    steps.push({ name, ok: true, seconds });
    log(`✔ ${name} (${seconds.toFixed(1)} s)`);
    return value;
  } catch (err) {
    const seconds = (performance.now() - start) / 1000;
    steps.push({ name, ok: false, seconds, error: err });
    log(`✘ ${name} (${seconds.toFixed(1)} s): ${err?.message ?? err}`);
    throw err;
  }
}

export function printSummary(title) {
  const total = (performance.now() - t0) / 1000;
  const width = Math.max(...steps.map((s) => s.name.length), 10);
  process.stdout.write(`\n${title}\n`);
  for (const s of steps) {
    process.stdout.write(
      `  ${s.ok ? "ok  " : "FAIL"}  ${s.name.padEnd(width)}  ${s.seconds.toFixed(1).padStart(6)} s\n`,
    );
    if (!s.ok)
      process.stdout.write(
        `        ${String(s.error?.message ?? s.error)
          .split("\n")
          .join("\n        ")}\n`,
      );
  }
  process.stdout.write(`  total ${total.toFixed(1)} s\n`);
  return steps.every((s) => s.ok);
}

/**
 * Runs a command and resolves with its output; rejects with the output's tail when it fails.
 * `echo` streams the output as it comes (long builds show progress in CI logs).
 */
export function run(cmd, args, { input, echo = false, allowFail = false, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: env ? { ...process.env, ...env } : process.env,
    });
    // A command may exit before reading its input: that is its answer, not an error of ours.
    child.stdin?.on("error", () => {});
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
      if (echo) process.stdout.write(d);
    });
    child.stderr.on("data", (d) => {
      err += d;
      if (echo) process.stderr.write(d);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0 || allowFail) return resolve({ code, stdout: out, stderr: err });
      const tail = (out + err).trim().split("\n").slice(-25).join("\n");
      reject(new Error(`${cmd} ${args.join(" ")} exited ${code}\n${tail}`));
    });
    child.stdin?.end(input);
  });
}

/** Free TCP ports on 127.0.0.1 (held together while choosing, so they are distinct). */
export async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = createNetServer();
      await new Promise((r, j) => s.once("error", j).listen(0, "127.0.0.1", r));
      servers.push(s);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

/**
 * Polls `probe` until it returns a truthy value or the deadline passes. Waiting on an observable
 * condition (an HTTP answer), never on a fixed sleep.
 */
export async function waitFor(what, probe, { timeoutMs = 60_000, intervalMs = 250 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function getJson(url, init) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

export function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

/** Fake OpenAI upstream credential the gateways are given; the fake refuses anything else. */
export const UPSTREAM_KEY = "sk-fake-upstream-credential";

/**
 * A minimal OpenAI chat-completions upstream on 127.0.0.1: JSON and SSE answers with usage,
 * `GET /v1/models`; 401 unless the gateway sends the upstream credential. Records requests.
 */
export async function startFakeOpenAi() {
  const seen = [];
  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (d) => (raw += d));
    req.on("end", () => {
      const body = raw ? JSON.parse(raw) : undefined;
      seen.push({ method: req.method, path: req.url, authorization: req.headers.authorization, body });
      const json = (status, value) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(value));
      };
      if (req.headers.authorization !== `Bearer ${UPSTREAM_KEY}`) {
        return json(401, {
          error: {
            message: "Incorrect API key provided",
            type: "invalid_request_error",
            param: null,
            code: "invalid_api_key",
          },
        });
      }
      if (req.method === "GET" && req.url === "/v1/models") {
        return json(200, {
          object: "list",
          data: [{ id: "gpt-4o-mini", object: "model", created: 0, owned_by: "fake" }],
        });
      }
      if (req.method !== "POST" || req.url !== "/v1/chat/completions")
        return json(404, { error: { message: "not found", type: "invalid_request_error" } });
      const last = body.messages?.at(-1)?.content;
      const text = `echo: ${typeof last === "string" ? last : JSON.stringify(last)}`;
      const usage = { prompt_tokens: 9, completion_tokens: 5, total_tokens: 14 };
      const id = `chatcmpl-fake${seen.length}`;
      const created = Math.floor(Date.now() / 1000);
      if (!body.stream) {
        return json(200, {
          id,
          object: "chat.completion",
          created,
          model: body.model,
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: text, refusal: null },
              logprobs: null,
              finish_reason: "stop",
            },
          ],
          usage,
        });
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const chunk = (delta, finish, extra = {}) =>
        res.write(
          `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...extra })}\n\n`,
        );
      chunk({ role: "assistant", content: "" }, null);
      for (const word of text.split(/(?<= )/)) chunk({ content: word }, null);
      chunk({}, "stop");
      if (body.stream_options?.include_usage)
        res.write(
          `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, choices: [], usage })}\n\n`,
        );
      res.end("data: [DONE]\n\n");
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    seen,
    baseUrl: `http://127.0.0.1:${port}/v1`,
    stop: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The container engine: $CONTAINER_ENGINE, else podman, else docker. */
export async function containerEngine() {
  const candidates = process.env.CONTAINER_ENGINE ? [process.env.CONTAINER_ENGINE] : ["podman", "docker"];
  for (const c of candidates) {
    const r = await run(c, ["--version"], { allowFail: true }).catch(() => null);
    if (r?.code === 0) return c;
  }
  throw new Error(
    "no container engine: install podman (on the project's CI machine: bash ../shared/tools/container-setup.sh) or docker, or set CONTAINER_ENGINE",
  );
}
