import net from "node:net";
import { createLogger } from "@tollgate/shared";
import { FakeControlPlane, makeKey, tempDir } from "@tollgate/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../test/test-config.js";
import { createGateway, type Gateway } from "../index.js";

async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("condition not met in time");
}

describe("a flood of idle connections on the client port", () => {
  const dir = tempDir();
  const key = makeKey();
  const cp = new FakeControlPlane([key.upsert], 1);
  let gw: Gateway;
  let port = 0;
  let statusPort = 0;
  const sockets: net.Socket[] = [];

  beforeAll(async () => {
    await cp.start();
    gw = createGateway(
      testConfig(dir.path, cp.url, cp.token, {
        logLevel: "silent",
        requestTimeoutMs: 2_000,
        connectionLimits: { maxConnections: 150, maxPerAddress: 40, idleTimeoutMs: 1_000, headersTimeoutMs: 1_000 },
      }),
      { logger: createLogger({ name: "gateway", level: "silent" }) },
    );
    ({ port, statusPort } = await gw.start());
    await eventually(() => (gw.context.syncState.ready ? true : undefined));
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await gw?.stop();
    await cp.stop();
    dir.remove();
  });

  const metrics = async () => (await fetch(`http://127.0.0.1:${statusPort}/metrics`)).text();
  const metric = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  const open = (localAddress: string) =>
    new Promise<net.Socket>((resolve) => {
      const s = net.connect({ port, host: "127.0.0.1", localAddress });
      s.on("error", () => {});
      s.once("connect", () => resolve(s));
      s.once("close", () => resolve(s));
      sockets.push(s);
    });
  const chat = (localAddress: string) =>
    new Promise<number>((resolve, reject) => {
      const s = net.connect({ port, host: "127.0.0.1", localAddress });
      const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
      s.write(
        `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key.secret}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
      );
      let got = "";
      s.on("data", (d: Buffer) => (got += d.toString()));
      s.on("error", reject);
      s.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0)));
    });

  it("bounds connections per address and in total, keeps serving others and the status port, and counts refusals", async () => {
    // 300 idle sockets from one address: 40 are held, the rest closed on accept.
    await Promise.all(Array.from({ length: 300 }, () => open("127.0.0.1")));
    const perAddress = await eventually(async () => {
      const m = await metrics();
      const refused = metric(m, /^tollgate_gateway_connections_refused_total\{reason="per_address"\} (\d+)$/m);
      return refused >= 260 && metric(m, /^tollgate_gateway_client_connections (\d+)$/m) <= 40 ? m : undefined;
    });
    expect(metric(perAddress, /^tollgate_gateway_connections_refused_total\{reason="per_address"\} (\d+)$/m)).toBe(260);
    // Another client is still served.
    expect(await chat("127.0.0.7")).toBe(200);

    // 200 more from five addresses: past the total bound (150), each replaces the oldest silent one.
    await Promise.all(
      ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"].flatMap((a) =>
        Array.from({ length: 40 }, () => open(a)),
      ),
    );
    const total = await eventually(async () => {
      const m = await metrics();
      return metric(m, /^tollgate_gateway_connections_refused_total\{reason="total"\} (\d+)$/m) > 0 ? m : undefined;
    });
    expect(metric(total, /^tollgate_gateway_client_connections (\d+)$/m)).toBeLessThanOrEqual(150);
    // At the total bound a real client still gets in: it replaces the oldest silent connection.
    expect(await chat("127.0.0.9")).toBe(200);
    // The status port answers whatever the client port suffers.
    expect((await fetch(`http://127.0.0.1:${statusPort}/healthz`)).status).toBe(200);

    // Idle connections that never send a request are closed (HEADERS_TIMEOUT), freeing room for clients.
    await eventually(async () =>
      metric(await metrics(), /^tollgate_gateway_client_connections (\d+)$/m) === 0 ? true : undefined,
    );
    expect(await chat("127.0.0.8")).toBe(200);
  }, 30_000);
});
