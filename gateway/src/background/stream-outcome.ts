import { Code, type ConnectError } from "@connectrpc/connect";
import type { Logger } from "@tollgate/shared";
import { tlsFailure } from "./tls-failure.js";

/** How one subscription ended. */
export type StreamOutcome =
  | { kind: "stopped" }
  | { kind: "ended"; healthy: boolean }
  | { kind: "resubscribe"; healthy: boolean }
  | { kind: "failed"; healthy: boolean; error: ConnectError };

export interface StreamEndContext {
  logger: Logger;
  /** CONTROL_PLANE_URL, named in the messages. */
  controlPlaneUrl: string;
  /** The applied revision and the reconnection delay, logged with every outcome. */
  fields: { revision: number; retryInMs: number };
  /** Whether the gateway serves from its cache meanwhile. */
  ready: boolean;
  keyCount: () => number;
}

/**
 * Logs why a subscription ended, before the loop reconnects: a rejected token
 * and a TLS failure each say what to fix; anything else is a warning while
 * the cache keeps serving.
 */
export function logStreamEnd(
  outcome: Exclude<StreamOutcome, { kind: "stopped" }>,
  { logger, controlPlaneUrl, fields, ready, keyCount }: StreamEndContext,
): void {
  if (outcome.kind === "failed") {
    const code = outcome.error.code;
    const tls = tlsFailure(outcome.error);
    if (code === Code.Unauthenticated || code === Code.PermissionDenied) {
      logger.error(
        { ...fields, code: Code[code], detail: outcome.error.rawMessage },
        `GATEWAY_TOKEN was rejected by the control plane at ${controlPlaneUrl}: create a token with POST /internal/gateway-tokens`,
      );
    } else if (tls !== undefined) {
      logger.error(
        { ...fields, code: Code[code], detail: tls.detail, url: controlPlaneUrl },
        `TLS with the control plane at ${controlPlaneUrl} failed: ${tls.reason}; ${tls.fix}. Retrying.`,
      );
    } else {
      logger.warn(
        { ...fields, code: Code[code], err: outcome.error.message, url: controlPlaneUrl },
        ready
          ? `sync stream to the control plane failed; serving the ${keyCount()} cached keys meanwhile`
          : "sync stream to the control plane failed; not ready until a first snapshot arrives",
      );
    }
  } else if (outcome.kind === "ended") {
    logger.info(fields, "control plane ended the sync stream; reconnecting");
  } else {
    logger.info(fields, "resubscribing to the control plane from the applied revision");
  }
}
