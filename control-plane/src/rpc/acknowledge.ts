import type { HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type {
  AcknowledgeRequest,
  AcknowledgeResponse,
  AcknowledgeStreamRequest,
  AcknowledgeStreamResponse,
} from "@tollgate/shared";
import { create } from "@bufbuild/protobuf";
import { AcknowledgeResponseSchema, AcknowledgeStreamResponseSchema, syncTrace } from "@tollgate/shared";
import type { AppContext } from "../context.js";
import type { GatewayPrincipal } from "../auth/credentials.js";
import { authenticateGateway } from "./gateway-auth.js";

/** One acknowledgement: resolves once it is written (receipts on this replica see it before that). */
async function recordAck(
  app: AppContext,
  principal: GatewayPrincipal,
  req: AcknowledgeRequest | AcknowledgeStreamRequest,
): Promise<void> {
  const error = req.error ? req.error.slice(0, 1000) : null;
  syncTrace("ack_received", principal.orgId, Number(req.revision), req.gatewayId);
  const known = await app.ackWriter.record({
    id: req.gatewayId,
    orgId: principal.orgId,
    revision: Number(req.revision),
    error,
  });
  syncTrace("ack_written", principal.orgId, Number(req.revision), req.gatewayId);
  app.metrics.ack(!known ? "unknown_gateway" : error ? "error" : "ok");
  if (error)
    app.logger.warn(
      { gatewayId: req.gatewayId, revision: Number(req.revision), error },
      "gateway failed to apply changes",
    );
}

export async function acknowledge(
  app: AppContext,
  req: AcknowledgeRequest,
  ctx: HandlerContext,
): Promise<AcknowledgeResponse> {
  const principal = await authenticateGateway(app, ctx);
  await recordAck(app, principal, req);
  return create(AcknowledgeResponseSchema, {});
}

/**
 * A gateway's acknowledgements on one open call: each message is recorded as it arrives,
 * without waiting for the previous one's write (the writer coalesces them, and only the
 * latest revision of a gateway matters). Revoking the token ends the call at once. A write
 * that fails ends the call with Unavailable: the gateway then acknowledges its applied
 * revision again with a single call, so no acknowledgement is lost for good.
 */
export async function acknowledgeStream(
  app: AppContext,
  reqs: AsyncIterable<AcknowledgeStreamRequest>,
  ctx: HandlerContext,
): Promise<AcknowledgeStreamResponse> {
  const principal = await authenticateGateway(app, ctx);
  const stream = app.streams.open(principal.tokenId, ctx.signal);
  const messages = reqs[Symbol.asyncIterator]();
  // Ends the wait for the next message: a revocation, a stop, or a failed write. One waiter at
  // a time (a promise raced per message against one shared promise would keep every message).
  let interrupt: (() => void) | undefined;
  let failed: unknown;
  const onAbort = () => interrupt?.();
  stream.signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      const next = await new Promise<IteratorResult<AcknowledgeStreamRequest> | null>((resolve, reject) => {
        if (stream.signal.aborted || failed !== undefined) return resolve(null);
        interrupt = () => resolve(null);
        messages.next().then(resolve, reject);
      });
      interrupt = undefined;
      if (next === null || next.done) break;
      const { gatewayId } = next.value;
      recordAck(app, principal, next.value).catch((err: unknown) => {
        app.logger.warn({ err, gatewayId }, "could not record a gateway acknowledgement; asking it to send it again");
        failed ??= err;
        interrupt?.();
      });
    }
    if (stream.revoked()) throw new ConnectError("gateway token revoked", Code.PermissionDenied);
    if (failed !== undefined) {
      throw new ConnectError("could not record an acknowledgement: send the applied revision again", Code.Unavailable);
    }
  } finally {
    stream.signal.removeEventListener("abort", onAbort);
    stream.close();
    if (stream.signal.aborted || failed !== undefined) void messages.return?.();
  }
  return create(AcknowledgeStreamResponseSchema, {});
}
