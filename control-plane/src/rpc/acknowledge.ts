import type { HandlerContext } from "@connectrpc/connect";
import type { AcknowledgeRequest, AcknowledgeResponse } from "@tollgate/shared";
import { create } from "@bufbuild/protobuf";
import { AcknowledgeResponseSchema, syncTrace } from "@tollgate/shared";
import type { AppContext } from "../context.js";
import { authenticateGateway } from "./gateway-auth.js";

export async function acknowledge(
  app: AppContext,
  req: AcknowledgeRequest,
  ctx: HandlerContext,
): Promise<AcknowledgeResponse> {
  const principal = await authenticateGateway(app, ctx);
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
  return create(AcknowledgeResponseSchema, {});
}
