import type { AppContext } from "../context.js";
import { listGateways } from "../repositories/gateways.js";
import { syncTrace } from "@tollgate/shared";

export interface GatewayReceipt {
  id: string;
  name: string;
  applied_revision: number;
}

/** Which online gateways of the organization applied a revision within the wait. */
export interface SyncReceipt {
  revision: number;
  complete: boolean;
  waited_ms: number;
  confirmed: GatewayReceipt[];
  pending: GatewayReceipt[];
}

const NEVER = new AbortController().signal;

/**
 * Waits until every online gateway of the organization acknowledged `revision`,
 * or the time is up. Reads acknowledgements from the database, so it sees gateways
 * attached to any control-plane replica; re-reads only when an acknowledgement was
 * written (here, or on another replica through NOTIFY), never on a timer.
 */
export async function awaitGateways(
  app: Pick<AppContext, "db" | "config" | "ackNotifier">,
  orgId: string,
  revision: number,
  timeoutMs: number,
): Promise<SyncReceipt> {
  const started = Date.now();
  for (;;) {
    // Taken before the read: an acknowledgement written during it wakes the wait at once.
    const seen = app.ackNotifier.version(orgId);
    const online = (await listGateways(app.db, orgId, app.config.gatewayOfflineAfterMs)).filter((g) => g.connected);
    const receipt = (g: (typeof online)[number]) => ({ id: g.id, name: g.name, applied_revision: g.applied_revision });
    const confirmed = online.filter((g) => g.applied_revision >= revision).map(receipt);
    const pending = online.filter((g) => g.applied_revision < revision).map(receipt);
    const waited = Date.now() - started;
    if (pending.length === 0 || waited >= timeoutMs) {
      syncTrace("receipt", orgId, revision);
      return { revision, complete: pending.length === 0, waited_ms: waited, confirmed, pending };
    }
    await app.ackNotifier.wait(orgId, seen, timeoutMs - waited, NEVER);
  }
}
