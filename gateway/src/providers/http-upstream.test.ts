import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpUpstream, type HttpUpstream } from "./http-upstream.js";
import { LightSignal } from "./light-signal.js";

/** An upstream that sends 103 Early Hints (as a CDN in front of an API may) before its answer. */
const server = createServer((_req, res) => {
  res.writeEarlyHints({ link: "</style.css>; rel=preload; as=style" });
  res.writeHead(200, { "content-type": "application/json", "x-request-id": "up_1" });
  res.end('{"ok":true}');
});
let upstream: HttpUpstream;

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  upstream = createHttpUpstream(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, 5_000);
});
afterAll(async () => {
  await upstream.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe("createHttpUpstream", () => {
  it("passes on the final answer, not an informational one before it", async () => {
    const answer = await upstream.request({
      method: "POST",
      path: "/chat/completions",
      headers: ["content-type", "application/json"],
      body: Buffer.from("{}"),
      signal: new LightSignal(),
    });
    expect(answer.status).toBe(200);
    expect(answer.contentType).toBe("application/json");
    expect(answer.headers).toEqual({ "x-upstream-request-id": "up_1" });
    const chunks: Buffer[] = [];
    for await (const c of answer.body) chunks.push(Buffer.from(c));
    expect(Buffer.concat(chunks).toString()).toBe('{"ok":true}');
  });
});
