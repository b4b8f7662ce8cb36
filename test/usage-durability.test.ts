import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTempDir,
  getFreePort,
  startControlPlane,
  startFakeOpenAI,
  startGateway,
  testDatabase,
  waitFor,
  type ControlPlaneProcess,
  type FakeOpenAI,
  type GatewayProcess,
  type TempDir,
} from "@tollgate/testkit";

/**
 * A gateway killed with -9 right after answering: every answered request's usage must reach
 * the control plane once it restarts, exactly once. The usage of an answer is committed to
 * the SQLite outbox before the answer's last bytes go out, so no answered request's usage can
 * still be in memory when the process dies.
 */
const MASTER_KEY = "sk-durability-master-key-0123456789abcdef";
const UPSTREAM_KEY = "sk-upstream-durability-0123456789";

describe("usage of answered requests survives kill -9", () => {
  const db = testDatabase("usagedur");
  let tmp: TempDir;
  let upstream: FakeOpenAI;
  let cp: ControlPlaneProcess;
  let gw: GatewayProcess;
  let token: string;

  const gateway = () =>
    startGateway({
      controlPlaneUrl: cp.grpcUrl,
      token,
      name: "victim",
      dataDir: join(tmp.path, "gw"),
      openaiBaseUrl: upstream.baseUrl,
      openaiApiKey: UPSTREAM_KEY,
    });

  beforeAll(async () => {
    tmp = await createTempDir("usagedur-");
    upstream = await startFakeOpenAI({ expectedApiKey: UPSTREAM_KEY });
    cp = await startControlPlane({
      masterKey: MASTER_KEY,
      dataDir: join(tmp.path, "cp"),
      grpcPort: await getFreePort(),
      ...(db ? { databaseUrl: db.url, databaseSchema: db.schema } : {}),
    });
    token = (await cp.admin.post("/internal/gateway-tokens", { name: "victim" })).body.token;
    gw = await gateway();
    await gw.waitForReady(30_000);
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    await cp?.stop();
    await upstream?.close();
    await db?.drop();
    await tmp?.cleanup();
  });

  it("kill -9 right after N answers, restart: the control plane counts N requests and their tokens, once", async () => {
    const user = (await cp.admin.post("/internal/users", { external_id: "durable@example.com" })).body.id as string;
    const key = (await cp.admin.post("/internal/api-keys?wait_for_gateways=10s", { name: "durable", user_id: user }))
      .body as { id: string; key: string };
    const N = 12;
    let input = 0;
    let output = 0;
    for (let i = 0; i < N; i++) {
      const stream = i % 3 === 0;
      const res = await fetch(`${gw.baseUrl}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key.key}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "gpt-4o-mini",
          messages: [{ role: "user", content: `answer ${i}` }],
          ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
        }),
      });
      expect(res.status).toBe(200);
      const text = await res.text();
      const usage = stream
        ? (
            JSON.parse(
              text
                .split("\n")
                .filter((l) => l.startsWith("data: {") && l.includes('"usage":{'))
                .at(-1)!
                .slice(6),
            ) as { usage: Record<string, number> }
          ).usage
        : (JSON.parse(text) as { usage: Record<string, number> }).usage;
      input += usage.prompt_tokens!;
      output += usage.completion_tokens!;
    }
    // At once: whatever the gateway still held in memory is gone with it.
    await gw.kill9();
    gw = await gateway();
    await gw.waitForReady(30_000);
    await waitFor(
      async () =>
        ((await gw.readyz()).body.quota?.usage_outbox ?? 1) === 0 &&
        (await cp.admin.get(`/internal/api-keys/${key.id}`)).body.requests >= N,
      {
        timeoutMs: 20_000,
        message: `the key's ${N} requests to be reported and the outbox emptied`,
      },
    );
    const shown = (await cp.admin.get(`/internal/api-keys/${key.id}`)).body as {
      requests: number;
      input_tokens: number;
      output_tokens: number;
    };
    expect({ requests: shown.requests, input: shown.input_tokens, output: shown.output_tokens }).toEqual({
      requests: N,
      input,
      output,
    });
  }, 120_000);
});
