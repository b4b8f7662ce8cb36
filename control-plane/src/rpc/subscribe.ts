import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import {
  ChangeSchema,
  SnapshotReason,
  SubscribeResponseSchema,
  type Change,
  type SubscribeRequest,
  type SubscribeResponse,
  syncTrace,
} from "@tollgate/shared";
import type { AppContext } from "../context.js";
import {
  oldestRetainedRevision,
  type ChangeEntry,
  type KeySyncRecord,
  type ModelPriceRecord,
  type SigningKeyRecord,
} from "../repositories/change-log.js";
import { markGatewayDisconnected, upsertConnectedGateway } from "../repositories/gateways.js";
import { currentRevision } from "../repositories/orgs.js";
import { authenticateGateway, kRemoteAddress, kTrackLiveness } from "./gateway-auth.js";
import { toKeyUpsert, toModelPrice, toSigningKey } from "./key-record.js";
import { toMcpServer } from "./mcp-server-record.js";
import type { McpServerSyncRecord } from "../repositories/mcp-servers.js";
import { snapshotEvents } from "./snapshot-stream.js";

/** Configuration the gateways apply, sent first on every stream. */
function settingsEvent(app: AppContext, streamLiveness: boolean): SubscribeResponse {
  const d = app.config.quota.defaults;
  const opt = (v: number | undefined) => (v === undefined ? undefined : BigInt(v));
  return create(SubscribeResponseSchema, {
    event: {
      case: "settings",
      value: {
        serverTimeMs: BigInt(app.now().getTime()),
        streamLiveness,
        acknowledgeStream: true,
        quotaDefaults: {
          keyRpmLimit: opt(d.keyRpmLimit),
          keyTpmLimit: opt(d.keyTpmLimit),
          keyTokensPerDayLimit: opt(d.keyTokensPerDayLimit),
          teamTpmLimit: opt(d.teamTpmLimit),
          teamDailyTokenLimit: opt(d.teamDailyTokenLimit),
        },
      },
    },
  });
}

const CHANGE_BATCH = 5000;
const GATEWAY_ID_RE = /^gw_[0-9a-z]{26}$/;

/**
 * One gateway's change stream: a snapshot or the deltas after its revision,
 * then every change as it commits, with heartbeats while idle.
 */
export async function* subscribe(
  app: AppContext,
  req: SubscribeRequest,
  ctx: HandlerContext,
): AsyncGenerator<SubscribeResponse> {
  const principal = await authenticateGateway(app, ctx);
  if (!GATEWAY_ID_RE.test(req.gatewayId)) {
    throw new ConnectError("gateway_id must be a gw_… id", Code.InvalidArgument);
  }
  const orgId = principal.orgId;
  const log = app.logger.child({ gatewayId: req.gatewayId, gatewayName: req.gatewayName });

  const connectedAt = await upsertConnectedGateway(app.db, {
    id: req.gatewayId,
    orgId,
    tokenId: principal.tokenId,
    name: req.gatewayName.slice(0, 200) || req.gatewayId,
    version: req.version.slice(0, 50) || "unknown",
    remoteAddress: ctx.values.get(kRemoteAddress),
  });
  if (connectedAt === null) {
    throw new ConnectError(
      `gateway ${req.gatewayId} is enrolled in another organization: revoke its token there first, or start this gateway with an empty DATA_DIR`,
      Code.PermissionDenied,
    );
  }

  // Revoking the token aborts this stream's signal, which ends the stream at once.
  const stream = app.streams.open(principal.tokenId, ctx.signal);
  // While this connection answers pings, the gateway is online: it sends no heartbeats.
  const untrack = ctx.values.get(kTrackLiveness)?.(req.gatewayId, orgId);

  app.metrics.streamOpened();
  log.info({ lastRevision: Number(req.lastRevision) }, "gateway subscribed");

  try {
    yield settingsEvent(app, untrack !== undefined);
    let cursor = Number(req.lastRevision);
    const reason = await snapshotReason(app, orgId, req, cursor);
    if (reason !== null) {
      const { revision, keys } = yield* snapshotEvents(app, orgId, reason);
      app.metrics.snapshotSent(SnapshotReason[reason]);
      log.info({ revision, keys, reason: SnapshotReason[reason] }, "snapshot sent");
      cursor = revision;
    }
    let idle = false;
    while (!stream.signal.aborted) {
      const seen = app.notifier.version(orgId);
      const entries = await app.changeFeed.read(orgId, cursor, CHANGE_BATCH);
      const last = entries.at(-1)?.revision ?? 0;
      if (last > 0) syncTrace("feed_read", orgId, last, req.gatewayId);
      if (entries.length > 0 && entries[0]!.revision !== cursor + 1) {
        // Compaction removed entries this stream had not sent yet: start over from a snapshot.
        const { revision, keys } = yield* snapshotEvents(app, orgId, SnapshotReason.COMPACTED);
        app.metrics.snapshotSent(SnapshotReason[SnapshotReason.COMPACTED]);
        log.info({ revision, keys, reason: "COMPACTED" }, "snapshot sent");
        cursor = revision;
        continue;
      }
      if (entries.length > 0) {
        // Built once per entry and shared by every stream of the organization.
        const changes = entries.map((e) => (e.message ??= toChange(e)));
        syncTrace("encode", orgId, last, req.gatewayId);
        yield create(SubscribeResponseSchema, { event: { case: "changeBatch", value: { changes } } });
        syncTrace("stream_write", orgId, last, req.gatewayId);
        app.metrics.changesSent(entries.length);
        cursor = entries[entries.length - 1]!.revision;
        // The batch itself tells the gateway where the organization stands: no heartbeat needed.
        idle = true;
        continue;
      }
      if (!idle) {
        // Caught up: tell the gateway where the organization stands, as of the read just made.
        yield heartbeat(cursor);
        idle = true;
      }
      const outcome = await app.notifier.wait(orgId, seen, app.config.heartbeatIntervalMs, stream.signal);
      if (outcome === "changed") syncTrace("wake", orgId, cursor + 1, req.gatewayId);
      // Quiet for an interval: read again (the feed shares that read among the organization's
      // streams), then send what it found or a heartbeat.
      if (outcome === "timeout") idle = false;
      // Optional (SYNC_DEBOUNCE): what commits while this stream reads and writes leaves as one batch anyway.
      else if (outcome === "changed" && app.config.syncDebounceMs > 0) {
        await new Promise((r) => setTimeout(r, app.config.syncDebounceMs));
      }
    }
    if (stream.revoked()) {
      throw new ConnectError("gateway token revoked", Code.PermissionDenied);
    }
  } finally {
    untrack?.();
    stream.close();
    app.metrics.streamClosed();
    await markGatewayDisconnected(app.db, req.gatewayId, connectedAt).catch((err: unknown) =>
      log.warn({ err }, "could not mark gateway disconnected"),
    );
    log.info("gateway stream closed");
  }
}

async function snapshotReason(
  app: AppContext,
  orgId: string,
  req: SubscribeRequest,
  cursor: number,
): Promise<SnapshotReason | null> {
  if (cursor === 0) return SnapshotReason.NEW_GATEWAY;
  if (req.orgId !== "" && req.orgId !== orgId) return SnapshotReason.ORG_CHANGED;
  const current = await currentRevision(app.db, orgId);
  if (cursor > current) return SnapshotReason.AHEAD;
  if (cursor === current) return null;
  const oldest = await oldestRetainedRevision(app.db, orgId);
  // The log must still hold cursor+1 for deltas to be complete.
  if (oldest === null || oldest > cursor + 1) return SnapshotReason.COMPACTED;
  return null;
}

function toChange(entry: ChangeEntry): Change {
  const committedAt = timestampFromDate(new Date(entry.committedAt));
  if (entry.kind === "signing_key_upsert") {
    return create(ChangeSchema, {
      revision: BigInt(entry.revision),
      op: { case: "signingKeyUpsert", value: toSigningKey(entry.payload as SigningKeyRecord) },
      committedAt,
    });
  }
  if (entry.kind === "model_price_upsert") {
    return create(ChangeSchema, {
      revision: BigInt(entry.revision),
      op: { case: "modelPriceUpsert", value: toModelPrice(entry.payload as ModelPriceRecord) },
      committedAt,
    });
  }
  if (entry.kind === "mcp_server_upsert") {
    return create(ChangeSchema, {
      revision: BigInt(entry.revision),
      op: { case: "mcpServerUpsert", value: toMcpServer(entry.payload as McpServerSyncRecord) },
      committedAt,
    });
  }
  if (entry.kind === "mcp_server_delete") {
    return create(ChangeSchema, {
      revision: BigInt(entry.revision),
      op: { case: "mcpServerDelete", value: { id: entry.resourceId } },
      committedAt,
    });
  }
  if (entry.kind === "model_price_delete") {
    const { provider, model } = entry.payload as { provider: string; model: string };
    return create(ChangeSchema, {
      revision: BigInt(entry.revision),
      op: { case: "modelPriceDelete", value: { provider, model } },
      committedAt,
    });
  }
  if (entry.kind === "key_upsert") {
    return create(ChangeSchema, {
      revision: BigInt(entry.revision),
      op: { case: "keyUpsert", value: toKeyUpsert(entry.payload as KeySyncRecord) },
      committedAt,
    });
  }
  return create(ChangeSchema, {
    revision: BigInt(entry.revision),
    op: { case: "keyDelete", value: { id: entry.resourceId } },
    committedAt,
  });
}

function heartbeat(revision: number): SubscribeResponse {
  return create(SubscribeResponseSchema, {
    event: { case: "heartbeat", value: { revision: BigInt(revision), serverTime: timestampFromDate(new Date()) } },
  });
}
