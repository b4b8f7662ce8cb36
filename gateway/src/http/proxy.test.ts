import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createLogger } from "@tollgate/shared";
import { createGateway, type Gateway, type GatewayConfig } from "../index.js";
import { createOpenAiProvider } from "../providers/openai/openai-provider.js";
import { FakeControlPlane, makeKey, tempDir } from "@tollgate/testkit";
import { testConfig } from "../../test/test-config.js";

const UPSTREAM_KEY = "sk-upstream-secret-123";

interface Seen {
  path: string;
  authorization: string | undefined;
  body: string;
}

/** A stand-in for api.openai.com, steered by the requested model. */
class FakeUpstream {
  readonly seen: Seen[] = [];
  closedEarly = 0;
  private releaseStream: (() => void) | undefined;
  private server: Server | undefined;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Lets a held stream (model "held") finish. */
  release(): void {
    this.releaseStream?.();
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    this.seen.push({ path: req.url ?? "", authorization: req.headers.authorization, body });
    if (req.url === "/v1/models") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          object: "list",
          data: [{ id: "gpt-upstream", object: "model", created: 1, owned_by: "openai" }],
        }),
      );
      return;
    }
    const parsed = JSON.parse(body) as { model: string; stream?: boolean };
    if (parsed.model === "rate-limited") {
      res.writeHead(429, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          error: { message: "Rate limit reached", type: "requests", param: null, code: "rate_limit_exceeded" },
        }),
      );
      return;
    }
    if (parsed.model === "slow") {
      // Never answers; a connection closed under it is the gateway giving up the call.
      res.on("close", () => {
        if (!res.writableFinished) this.closedEarly++;
      });
      return;
    }
    if (!parsed.stream) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id: "chatcmpl-1",
          object: "chat.completion",
          choices: [],
          usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
        }),
      );
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.on("close", () => {
      if (!res.writableFinished) this.closedEarly++;
    });
    res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: "first" } }] })}\n\n`);
    if (parsed.model === "held") await new Promise<void>((r) => (this.releaseStream = r));
    if (res.destroyed) return;
    // The usage line arrives split across two writes, as TCP may deliver it.
    const usageLine = `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } })}\n\n`;
    res.write(usageLine.slice(0, 20));
    res.write(usageLine.slice(20));
    res.end("data: [DONE]\n\n");
  }
}

function configFor(dataDir: string, controlPlaneUrl: string, token: string, upstream: string): GatewayConfig {
  return testConfig(dataDir, controlPlaneUrl, token, {
    gatewayName: "proxy-test",
    providers: [
      {
        name: "openai",
        kind: "openai",
        baseUrl: `${upstream}/v1`,
        apiKey: UPSTREAM_KEY,
        models: [],
        modelPatterns: ["*"],
        timeoutMs: 500,
      },
    ],
    upstreamTimeoutMs: 500,
    maxBodyBytes: 1024 * 1024,
    logLevel: "silent",
    shutdownGraceMs: 500,
    syncHeartbeatIntervalMs: 5_000,
  });
}

async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("proxying to an OpenAI-compatible upstream", () => {
  const dir = tempDir();
  const key = makeKey();
  const cp = new FakeControlPlane([key.upsert], 1);
  const upstream = new FakeUpstream();
  let gw: Gateway;
  let base = "";

  beforeAll(async () => {
    await Promise.all([cp.start(), upstream.start()]);
    gw = createGateway(configFor(dir.path, cp.url, cp.token, upstream.url), {
      logger: createLogger({ name: "gateway", level: "silent" }),
    });
    base = `http://127.0.0.1:${(await gw.start()).port}`;
    await eventually(() => (gw.context.syncState.ready ? true : undefined));
  });

  afterAll(async () => {
    await gw?.stop();
    await Promise.all([cp.stop(), upstream.stop()]);
    dir.remove();
  });

  const post = (raw: string, signal?: AbortSignal) =>
    fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key.secret}`, "content-type": "application/json" },
      body: raw,
      signal,
    });

  const logged = (requestId: string | null) =>
    eventually(() => gw.context.db.requestLog.list().find((r) => r.requestId === requestId));

  it("forwards the original bytes with the upstream key, never the client's, and logs usage", async () => {
    const raw = `{ "messages": [{"role":"user","content":"hi"}],   "model": "gpt-4o-mini", "x_extra": 1 }`;
    const res = await post(raw);
    expect(res.status).toBe(200);
    expect((await res.json()) as unknown).toMatchObject({ usage: { total_tokens: 18 } });
    const seen = upstream.seen.at(-1)!;
    expect(seen).toEqual({ path: "/v1/chat/completions", authorization: `Bearer ${UPSTREAM_KEY}`, body: raw });
    expect(await logged(res.headers.get("x-request-id"))).toMatchObject({
      keyId: key.upsert.id,
      model: "gpt-4o-mini",
      status: 200,
      promptTokens: 11,
      completionTokens: 7,
      totalTokens: 18,
      stream: false,
    });
  });

  it("passes SSE chunks through as they arrive and taps usage from a split line", async () => {
    const res = await post(JSON.stringify({ model: "held", stream: true, messages: [] }));
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    // The upstream holds the rest of the stream: the first chunk can only be here if it was not buffered.
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('"first"');
    upstream.release();
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toContain("data: [DONE]");
    expect(await logged(res.headers.get("x-request-id"))).toMatchObject({
      status: 200,
      stream: true,
      totalTokens: 5,
      error: null,
    });
  });

  it("aborts the upstream call when the client goes away", async () => {
    const before = upstream.closedEarly;
    const abort = new AbortController();
    const res = await post(JSON.stringify({ model: "held", stream: true, messages: [] }), abort.signal);
    await res.body!.getReader().read();
    abort.abort();
    await eventually(() => (upstream.closedEarly > before ? true : undefined));
  });

  it("keeps an upstream error's status and body", async () => {
    const res = await post(JSON.stringify({ model: "rate-limited", messages: [] }));
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("rate_limit_exceeded");
  });

  it("answers 504 when the upstream does not answer in time", async () => {
    const res = await post(JSON.stringify({ model: "slow", messages: [] }));
    expect(res.status).toBe(504);
    expect((await res.json()) as unknown).toMatchObject({ error: { type: "server_error", code: "upstream_timeout" } });
  });

  it("proxies the model list", async () => {
    const res = await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${key.secret}` } });
    expect(res.status).toBe(200);
    expect((await res.json()) as unknown).toMatchObject({ data: [{ id: "gpt-upstream" }] });
  });

  it("answers 502 when the upstream cannot be reached", async () => {
    const down = createServer();
    await new Promise<void>((r) => down.listen(0, "127.0.0.1", r));
    const deadUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}`;
    await new Promise<void>((r) => down.close(() => r()));
    const dir2 = tempDir();
    const gw2 = createGateway(configFor(dir2.path, cp.url, cp.token, deadUrl), {
      logger: createLogger({ name: "gateway", level: "silent" }),
      providers: [createOpenAiProvider({ baseUrl: `${deadUrl}/v1`, apiKey: UPSTREAM_KEY, timeoutMs: 2_000 })],
    });
    try {
      const port = (await gw2.start()).port;
      await eventually(() => (gw2.context.syncState.ready ? true : undefined));
      const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key.secret}` },
        body: JSON.stringify({ model: "m", messages: [] }),
      });
      expect(res.status).toBe(502);
      const body = (await res.json()) as { error: { type: string; message: string } };
      expect(body.error.type).toBe("server_error");
      expect(body.error.message).not.toContain(UPSTREAM_KEY);
    } finally {
      await gw2.stop();
      dir2.remove();
    }
  });
});

/**
 * A gateway of its own against a fresh fake upstream, with the upstream deadline `upstreamTimeoutMs`
 * (and `requestTimeoutMs` when given): `fn` gets the chat completions URL once the keys are synced.
 */
async function withOwnGateway(
  timeouts: { upstreamTimeoutMs: number; requestTimeoutMs?: number },
  fn: (url: string, key: ReturnType<typeof makeKey>, upstream: FakeUpstream) => Promise<void>,
): Promise<void> {
  const dir = tempDir();
  const key = makeKey();
  const cp = new FakeControlPlane([key.upsert], 1);
  const upstream = new FakeUpstream();
  await Promise.all([cp.start(), upstream.start()]);
  const base = configFor(dir.path, cp.url, cp.token, upstream.url);
  const gw = createGateway(
    {
      ...base,
      ...timeouts,
      providers: base.providers.map((p) => ({ ...p, timeoutMs: timeouts.upstreamTimeoutMs })),
    },
    { logger: createLogger({ name: "gateway", level: "silent" }) },
  );
  try {
    const url = `http://127.0.0.1:${(await gw.start()).port}/v1/chat/completions`;
    await eventually(() => (gw.context.syncState.ready ? true : undefined));
    await fn(url, key, upstream);
  } finally {
    upstream.release();
    await gw.stop();
    await Promise.all([cp.stop(), upstream.stop()]);
    dir.remove();
  }
}

describe("a client that leaves", () => {
  it("ends the upstream call it was waiting for, long before the upstream's deadline", async () => {
    // A deadline far beyond the test's: only the client's leaving can end these calls.
    await withOwnGateway({ upstreamTimeoutMs: 600_000 }, async (url, key, upstream) => {
      for (const [n, stream] of [
        [1, false],
        [2, true],
      ] as const) {
        const abort = new AbortController();
        const seen = upstream.seen.length;
        const answered = fetch(url, {
          method: "POST",
          headers: { authorization: `Bearer ${key.secret}`, "content-type": "application/json" },
          // "slow" never answers; "held" sends its first chunk, then waits.
          body: JSON.stringify({ model: stream ? "held" : "slow", stream, messages: [] }),
          signal: abort.signal,
        });
        if (stream) await (await answered).body!.getReader().read();
        else await eventually(() => (upstream.seen.length > seen ? true : undefined));
        abort.abort();
        await answered.catch(() => undefined);
        await eventually(() => (upstream.closedEarly >= n ? true : undefined));
      }
    });
  });
});

describe("REQUEST_TIMEOUT", () => {
  it("bounds receiving the request, never the answer: a stream runs longer than it", async () => {
    await withOwnGateway({ upstreamTimeoutMs: 10_000, requestTimeoutMs: 1_000 }, async (url, key, upstream) => {
      const res = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${key.secret}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "held", stream: true, messages: [{ role: "user", content: "hi" }] }),
      });
      expect(res.status).toBe(200);
      await new Promise((r) => setTimeout(r, 2_500)); // 2.5 × REQUEST_TIMEOUT with the stream open
      upstream.release();
      const text = await res.text();
      expect(text).toContain('"first"');
      expect(text).toContain("data: [DONE]");
    });
  });
});
