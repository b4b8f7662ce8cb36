import { createServer, connect, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTempDir,
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
 * Read-your-writes across real processes: a key works at every connected
 * gateway the moment its create (or rotate) answers, and a client polling a key
 * that a disconnected gateway cannot know yet is never blocked as a guesser.
 */
const MASTER_KEY = "sk-ryw-master-key-0123456789abcdefghij";
const UPSTREAM_KEY = "sk-upstream-ryw-0123456789";

/** A TCP relay between one gateway and the control plane's gRPC port, to cut that link alone. */
async function relay(target: number): Promise<{ port: number; cut(): Promise<void>; restore(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = connect(target, "127.0.0.1");
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on("close", () => sockets.delete(s));
          s.on("error", () => s.destroy());
        }
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, "127.0.0.1", () => {
        port = (server!.address() as { port: number }).port;
        resolve();
      });
    });
  await listen();
  return {
    port,
    cut: async () => {
      await new Promise<void>((resolve) => {
        server!.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
    restore: listen,
  };
}

describe("read-your-writes", () => {
  const db = testDatabase("ryw");
  let tmp: TempDir;
  let upstream: FakeOpenAI;
  let cp: ControlPlaneProcess;
  let userId: string;
  const fleet: GatewayProcess[] = [];
  let link: Awaited<ReturnType<typeof relay>>;
  let behindRelay: GatewayProcess;

  const chat = async (gw: GatewayProcess, key: string) => {
    const res = await fetch(`${gw.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
    });
    await res.arrayBuffer();
    return res.status;
  };

  beforeAll(async () => {
    tmp = await createTempDir("ryw-");
    upstream = await startFakeOpenAI({ expectedApiKey: UPSTREAM_KEY });
    cp = await startControlPlane({
      masterKey: MASTER_KEY,
      dataDir: join(tmp.path, "cp"),
      ...(db ? { databaseUrl: db.url, databaseSchema: db.schema } : {}),
    });
    userId = (await cp.admin.post("/internal/users", { external_id: "ryw@example.com" })).body.id;
    const token = (await cp.admin.post("/internal/gateway-tokens", { name: "ryw" })).body.token;
    link = await relay(Number(new URL(cp.grpcUrl).port));
    const gw = (name: string, url: string) =>
      startGateway({
        controlPlaneUrl: url,
        token,
        name,
        dataDir: join(tmp.path, name),
        openaiBaseUrl: upstream.baseUrl,
        openaiApiKey: UPSTREAM_KEY,
        // The product's default (the test kit turns blocking off for other suites).
        env: { BRUTE_FORCE_MAX_FAILED_ATTEMPTS: "5" },
      });
    fleet.push(await gw("gw-1", cp.grpcUrl), await gw("gw-2", cp.grpcUrl), await gw("gw-3", cp.grpcUrl));
    behindRelay = await gw("gw-relayed", `http://127.0.0.1:${link.port}`);
    await Promise.all([...fleet, behindRelay].map((g) => g.waitForReady(30_000)));
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...fleet, behindRelay].map((g) => g?.stop()));
    await link?.cut();
    await cp?.stop();
    await upstream?.close();
    await db?.drop();
    await tmp?.cleanup();
  });

  it("a key works at every gateway the moment its create or rotate answers", async () => {
    const gateways = [...fleet, behindRelay];
    for (let i = 0; i < 5; i++) {
      const created = await cp.admin.post("/internal/api-keys", { name: `ryw-${i}`, user_id: userId });
      expect(created.status).toBe(201);
      expect(await Promise.all(gateways.map((g) => chat(g, created.body.key)))).toEqual(gateways.map(() => 200));
      const rotated = await cp.admin.post(`/internal/api-keys/${created.body.id}/rotate`, {});
      expect(rotated.status).toBe(200);
      expect(await Promise.all(gateways.map((g) => chat(g, rotated.body.key)))).toEqual(gateways.map(() => 200));
    }
  });

  it("a client retrying a key a disconnected gateway cannot know yet is served once it arrives, never blocked", async () => {
    await link.cut();
    await waitFor(async () => (await behindRelay.metrics()).includes("tollgate_gateway_sync_connected 0"), {
      timeoutMs: 15_000,
      intervalMs: 20,
      message: "the relayed gateway never saw the link drop",
    });
    const created = await cp.admin.post("/internal/api-keys", { name: "while-cut", user_id: userId });
    expect(created.status).toBe(201);
    // Well past BRUTE_FORCE_MAX_FAILED_ATTEMPTS (5): each is a key this gateway cannot know yet.
    const during: number[] = [];
    for (let i = 0; i < 12; i++) during.push(await chat(behindRelay, created.body.key));
    expect(during).toEqual(during.map(() => 401));
    await link.restore();
    const after: number[] = [];
    await waitFor(
      async () => {
        after.push(await chat(behindRelay, created.body.key));
        return after.at(-1) === 200;
      },
      { timeoutMs: 30_000, intervalMs: 20, message: "the key never arrived at the relayed gateway" },
    );
    expect(after.filter((s) => s !== 401 && s !== 200)).toEqual([]);
  }, 60_000);
});
