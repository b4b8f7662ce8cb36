import type { SecureClientSessionOptions } from "node:http2";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { Http2SessionManager, compressionGzip, createGrpcTransport } from "@connectrpc/connect-node";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { KeySyncService, QuotaService } from "@tollgate/shared";
import type { ControlPlaneTls } from "../config.js";
import type { QuotaRpc } from "../quota/quota-rpc.js";
import type { UsageRpc } from "../quota/usage-outbox.js";

export interface ControlPlaneConnectionOptions {
  url: string;
  /** GATEWAY_TOKEN: sent on every call by the one auth interceptor. */
  token: string;
  tls: ControlPlaneTls;
  gatewayId: string;
  /** HTTP/2 ping interval: detects a dead connection when the stream is silent. */
  pingIntervalMs?: number;
  /** SYNC_COMPRESSION: accept gzip on the stream (the control plane then compresses what it sends). */
  compression?: boolean;
}

/** Node's TLS options for http2.connect() from the gateway's TLS settings. */
function tlsSessionOptions(tls: ControlPlaneTls): SecureClientSessionOptions {
  const out: SecureClientSessionOptions = {};
  if (tls.ca !== undefined) out.ca = tls.ca;
  if (tls.cert !== undefined) out.cert = tls.cert;
  if (tls.key !== undefined) out.key = tls.key;
  return out;
}

/** Authenticates every call (stream, acknowledgement, quota) in one place, so no call site can forget it. */
function bearerAuth(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

/**
 * The one HTTP/2 connection to the control plane: the key stream, its
 * acknowledgements and the quota service share it.
 */
export class ControlPlaneConnection {
  readonly keySync: Client<typeof KeySyncService>;
  private readonly quota: Client<typeof QuotaService>;
  private readonly session: Http2SessionManager;

  constructor(private readonly options: ControlPlaneConnectionOptions) {
    // With a session manager of our own, createGrpcTransport's nodeOptions are
    // ignored: the TLS options (ca, cert, key) go to http2.connect() from here.
    this.session = new Http2SessionManager(
      options.url,
      { pingIntervalMs: options.pingIntervalMs ?? 15_000, pingTimeoutMs: 10_000 },
      tlsSessionOptions(options.tls),
    );
    const transport = createGrpcTransport({
      baseUrl: options.url,
      sessionManager: this.session,
      interceptors: [bearerAuth(options.token)],
      // What the control plane may compress its answers with: nothing unless asked (SYNC_COMPRESSION).
      acceptCompression: options.compression ? [compressionGzip] : [],
    });
    this.keySync = createClient(KeySyncService, transport);
    this.quota = createClient(QuotaService, transport);
  }

  /** Closes the connection: calls in flight fail at once. */
  abort(): void {
    this.session.abort();
  }

  /** QuotaService over the same HTTP/2 connection as the key stream. */
  quotaRpc(): QuotaRpc & UsageRpc {
    const client = this.quota;
    const gatewayId = this.options.gatewayId;
    const opts = { timeoutMs: 2_000 };
    return {
      acquire: async (statements) => {
        const res = await client.acquire(
          {
            gatewayId,
            counters: statements.map((s) => ({
              counter: s.counter,
              window: s.window,
              kind: s.kind,
              capacity: BigInt(s.capacity),
              consumed: BigInt(s.consumed),
              wantHeld: BigInt(s.wantHeld),
              windowEndsAtMs: BigInt(s.windowEndsAtMs),
            })),
          },
          opts,
        );
        return {
          activeGateways: res.activeGateways,
          // An older control plane sends no server_time_ms: no sample, the offset in use stays.
          ...(res.serverTime && res.serverTimeMs > 0n
            ? { serverTime: { tookMs: timestampMs(res.serverTime), sentMs: Number(res.serverTimeMs) } }
            : {}),
          grants: res.grants.map((g) => ({
            counter: g.counter,
            window: g.window,
            held: Number(g.held),
            fleetUsed: Number(g.fleetUsed),
          })),
        };
      },
      reportUsage: async (rows) => {
        const res = await client.reportUsage(
          {
            gatewayId,
            reports: rows.map((r) => ({
              seq: BigInt(r.seq),
              records: r.records.map((x) => ({
                keyId: x.keyId,
                userId: x.userId,
                teamId: x.teamId,
                day: x.day,
                requests: BigInt(x.requests),
                inputTokens: BigInt(x.inputTokens),
                outputTokens: BigInt(x.outputTokens),
                costMicroUsd: BigInt(x.costMicroUsd),
                lastUsedAt: timestampFromMs(x.lastUsedAtMs),
              })),
            })),
          },
          opts,
        );
        return res.acknowledged.map(Number);
      },
    };
  }
}
