import http2 from "node:http2";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { KeySyncService, newId } from "@tollgate/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_MASTER_KEY } from "../../test/test-config.js";
import { startTestControlPlane, type TestControlPlane } from "../../test/test-control-plane.js";

const LIMITS = { authTimeoutMs: 1_000, maxSessions: 60, maxPerAddress: 50 };

describe("unauthenticated HTTP/2 sessions on the gRPC port", () => {
  let h: TestControlPlane;
  beforeAll(async () => {
    h = await startTestControlPlane({ grpcSessions: LIMITS });
  });
  afterAll(async () => {
    await h?.stop();
  });

  const metrics = async () => (await fetch(`${h.base}/metrics`)).text();
  const metric = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  const session = (localAddress = "127.0.0.1") => {
    const s = http2.connect(`http://127.0.0.1:${h.grpcPort}`, { localAddress } as http2.SecureClientSessionOptions);
    s.on("error", () => {});
    const closed = new Promise<void>((resolve) => s.once("close", () => resolve()));
    return { s, closed };
  };

  it("closes sessions that do not authenticate in time and bounds them per address and in total; the admin API keeps answering", async () => {
    // An enrolled gateway's session authenticates with its first RPC and stays open.
    const token = (
      (await (
        await fetch(`${h.base}/internal/gateway-tokens`, {
          method: "POST",
          headers: { authorization: `Bearer ${TEST_MASTER_KEY}`, "content-type": "application/json" },
          body: JSON.stringify({ name: "guarded" }),
        })
      ).json()) as { token: string }
    ).token;
    const gateway = createClient(KeySyncService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${h.grpcPort}` }));
    await gateway.acknowledge(
      { gatewayId: newId("gw"), revision: 0n },
      { headers: { authorization: `Bearer ${token}` } },
    );

    // 80 idle sessions from the gateway's address: 49 more are held (until the deadline), 31 closed at once.
    const idle = Array.from({ length: 80 }, () => session());
    // 20 from a second address: the total bound (60, the gateway's session included) refuses the excess.
    const more = Array.from({ length: 20 }, () => session("127.0.0.2"));
    expect((await fetch(`${h.base}/healthz`)).status).toBe(200);
    // Every idle session ends, none held past the deadline: the bounded wait is the test's own timeout.
    await Promise.all([...idle, ...more].map((x) => x.closed));
    const m = await metrics();
    expect(metric(m, /^tollgate_cp_grpc_sessions_refused_total\{reason="per_address"\} (\d+)$/m)).toBe(31);
    expect(
      metric(m, /^tollgate_cp_grpc_sessions_refused_total\{reason="auth_timeout"\} (\d+)$/m),
    ).toBeGreaterThanOrEqual(49);
    expect(metric(m, /^tollgate_cp_grpc_sessions_refused_total\{reason="total"\} (\d+)$/m)).toBeGreaterThan(0);
    // The authenticated gateway's session is still there and still served.
    expect(metric(m, /^tollgate_cp_grpc_sessions (\d+)$/m)).toBe(1);
    await gateway.acknowledge(
      { gatewayId: newId("gw"), revision: 0n },
      { headers: { authorization: `Bearer ${token}` } },
    );
    expect((await fetch(`${h.base}/healthz`)).status).toBe(200);
  }, 30_000);
});
