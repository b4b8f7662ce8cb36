import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import net, { type AddressInfo } from "node:net";
import { createLogger } from "@tollgate/shared";
import { FakeControlPlane, makeKey, tempDir } from "@tollgate/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../test/test-config.js";
import { createGateway, type Gateway } from "../index.js";

/** An upstream that sends the answer and its finish_reason, then holds the usage chunk until released. */
class HoldingUpstream {
  private server: Server | undefined;
  private releases: (() => void)[] = [];
  abortedBeforeUsage = 0;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  releaseAll(): void {
    for (const r of this.releases.splice(0)) r();
  }

  async stop(): Promise<void> {
    this.releaseAll();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for await (const _ of req);
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(
      `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: "the whole answer" }, finish_reason: null }] })}\n\n`,
    );
    res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}\n\n`);
    await new Promise<void>((r) => this.releases.push(r));
    if (res.destroyed) {
      this.abortedBeforeUsage++;
      return;
    }
    res.write(
      `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 40, completion_tokens: 2, total_tokens: 42 } })}\n\n`,
    );
    res.end("data: [DONE]\n\n");
  }
}

async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("condition not met in time");
}

describe("stream usage when the client leaves after the answer", () => {
  const dir = tempDir();
  const key = makeKey();
  const cp = new FakeControlPlane([key.upsert], 1);
  const upstream = new HoldingUpstream();
  let gw: Gateway;
  let port = 0;
  let statusPort = 0;

  beforeAll(async () => {
    await Promise.all([cp.start(), upstream.start()]);
    gw = createGateway(
      testConfig(dir.path, cp.url, cp.token, {
        providers: [
          {
            name: "openai",
            kind: "openai",
            baseUrl: `${upstream.url}/v1`,
            apiKey: "sk-up",
            models: [],
            modelPatterns: ["*"],
            timeoutMs: 10_000,
          },
        ],
        logLevel: "silent",
      }),
      { logger: createLogger({ name: "gateway", level: "silent" }) },
    );
    ({ port, statusPort } = await gw.start());
    await eventually(() => (gw.context.syncState.ready ? true : undefined));
  });

  afterAll(async () => {
    await gw?.stop();
    await Promise.all([cp.stop(), upstream.stop()]);
    dir.remove();
  });

  const openConnections = async () => {
    const text = await (await fetch(`http://127.0.0.1:${statusPort}/metrics`)).text();
    return Number(/^tollgate_gateway_client_connections (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
  };

  it("records the upstream's usage when the client closes right after the finish_reason chunk", async () => {
    const body = JSON.stringify({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "hi" }] });
    const socket = net.connect(port, "127.0.0.1");
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key.secret}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    let received = "";
    await new Promise<void>((resolve) => {
      socket.on("data", (d: Buffer) => {
        received += d.toString("utf8");
        if (received.includes('"finish_reason":"stop"')) resolve();
      });
    });
    const requestId = /x-request-id: (\S+)/i.exec(received)?.[1];
    socket.destroy();
    // The gateway has seen the client leave before the upstream sends its usage.
    await eventually(async () => ((await openConnections()) === 0 ? true : undefined));
    upstream.releaseAll();
    const row = await eventually(() => gw.context.db.requestLog.list().find((r) => r.requestId === requestId));
    expect(upstream.abortedBeforeUsage).toBe(0);
    expect(row).toMatchObject({ stream: true, promptTokens: 40, completionTokens: 2, totalTokens: 42 });
  });
});
