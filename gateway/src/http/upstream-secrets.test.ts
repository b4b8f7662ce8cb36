import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createLogger } from "@tollgate/shared";
import { FakeControlPlane, makeKey, tempDir } from "@tollgate/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../test/test-config.js";
import { createGateway, type Gateway } from "../index.js";

const UPSTREAM_KEY = "sk-proj-upstream0123456789wxyz";
const MASKED = "sk-proj-****wxyz";

describe("an upstream that refuses the gateway's credential", () => {
  const dir = tempDir();
  const key = makeKey();
  const cp = new FakeControlPlane([key.upsert], 1);
  let upstream: Server;
  let gw: Gateway;
  let base = "";

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(401, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            error: {
              message: `Incorrect API key provided: ${MASKED}. You can find your API key at https://platform.openai.com/account/api-keys.`,
              type: "invalid_request_error",
              param: null,
              code: "invalid_api_key",
            },
          }),
        );
      });
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    await cp.start();
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
    gw = createGateway(
      testConfig(dir.path, cp.url, cp.token, {
        providers: [
          {
            name: "openai",
            kind: "openai",
            baseUrl: url,
            apiKey: UPSTREAM_KEY,
            models: [],
            modelPatterns: ["*"],
            timeoutMs: 5_000,
          },
        ],
        logLevel: "silent",
      }),
      { logger: createLogger({ name: "gateway", level: "silent" }) },
    );
    base = `http://127.0.0.1:${(await gw.start()).port}`;
    for (let i = 0; i < 500 && !gw.context.syncState.ready; i++) await new Promise((r) => setTimeout(r, 20));
  });

  afterAll(async () => {
    await gw?.stop();
    await cp.stop();
    await new Promise<void>((r) => upstream.close(() => r()));
    dir.remove();
  });

  it("answers with the gateway's own error, never the provider key's masked form", async () => {
    for (const stream of [false, true]) {
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key.secret}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o-mini", stream, messages: [{ role: "user", content: "hi" }] }),
      });
      const text = await res.text();
      expect(res.status).toBe(502);
      expect(JSON.parse(text)).toMatchObject({ error: { type: "server_error", code: "upstream_auth_failed" } });
      expect(text).not.toContain("wxyz");
      expect(text).not.toContain("Incorrect API key");
    }
  });
});
