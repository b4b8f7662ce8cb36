import type { HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { AcknowledgeRequest, AcknowledgeResponse } from "@tollgate/shared";
import { create } from "@bufbuild/protobuf";
import { AcknowledgeResponseSchema, syncTrace } from "@tollgate/shared";
import type { AppContext } from "../context.js";
import type { GatewayPrincipal } from "../auth/credentials.js";
import { authenticateGateway } from "./gateway-auth.js";

/** One acknowledgement: resolves once it is written (receipts on this replica see it before that). */
async function recordAck(app: AppContext, principal: GatewayPrincipal, req: AcknowledgeRequest): Promise<void> {
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
 * latest revision of a gateway matters). Revoking the token ends the call at once.
 */
export async function acknowledgeStream(
  app: AppContext,
  reqs: AsyncIterable<AcknowledgeRequest>,
  ctx: HandlerContext,
): Promise<AcknowledgeResponse> {
  const principal = await authenticateGateway(app, ctx);
  const stream = app.streams.open(principal.tokenId, ctx.signal);
  const ended = new Promise<IteratorResult<AcknowledgeRequest>>((resolve) =>
    stream.signal.addEventListener("abort", () => resolve({ done: true, value: undefined }), { once: true }),
  );
  const messages = reqs[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await Promise.race([messages.next(), ended]);
      if (next.done) break;
      recordAck(app, principal, next.value).catch((err: unknown) =>
        app.logger.warn({ err, gatewayId: next.value.gatewayId }, "could not record a gateway acknowledgement"),
      );
    }
    if (stream.revoked()) throw new ConnectError("gateway token revoked", Code.PermissionDenied);
  } finally {
    stream.close();
    if (stream.signal.aborted) void messages.return?.();
  }
  return create(AcknowledgeResponseSchema, {});
}
