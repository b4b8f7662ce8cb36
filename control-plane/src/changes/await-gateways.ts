import type { ControlPlaneConfig } from "../config.js";
import type { Db } from "../db/database.js";
import { listGateways } from "../repositories/gateways.js";
import { syncTrace } from "@tollgate/shared";
import type { AckWriter } from "./ack-writer.js";
import type { ChangeNotifier } from "./notifier.js";

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
 * attached to any control-plane replica; wakes only when an acknowledgement arrived
 * here or was written on another replica (NOTIFY), never on a timer, and
 * re-reads only for acknowledgements another replica wrote (its NOTIFY, not this one's echo).
 */
export async function awaitGateways(
  app: {
    db: Db;
    config: Pick<ControlPlaneConfig, "gatewayOfflineAfterMs">;
    ackNotifier: ChangeNotifier;
    ackWriter: Pick<AckWriter, "appliedRevision" | "remoteVersion">;
  },
  orgId: string,
  revision: number,
  timeoutMs: number,
): Promise<SyncReceipt> {
  const started = Date.now();
  const readOnline = async () =>
    (await listGateways(app.db, orgId, app.config.gatewayOfflineAfterMs))
      .filter((g) => g.connected)
      .map((g) => ({ id: g.id, name: g.name, applied_revision: g.applied_revision }));
  // Taken before each read: an acknowledgement written during it wakes the wait at once.
  let seen = app.ackNotifier.version(orgId);
  let remote = app.ackWriter.remoteVersion(orgId);
  let online = await readOnline();
  // Acknowledgements this replica received are known without a query.
  const applied = (g: GatewayReceipt) => Math.max(g.applied_revision, app.ackWriter.appliedRevision(g.id, orgId));
  // Each wake looks at the gateways still pending only: one per acknowledgement arrives.
  let pending = online.filter((g) => applied(g) < revision);
  let lastLook = false;
  for (;;) {
    const waited = Date.now() - started;
    if (pending.length > 0 && waited >= timeoutMs && !lastLook) {
      // Time is up: one last read, for another replica's NOTIFY that was lost (its listener reconnecting).
      lastLook = true;
      online = await readOnline();
      pending = online.filter((g) => applied(g) < revision);
      continue;
    }
    if (pending.length === 0 || waited >= timeoutMs) {
      syncTrace("receipt", orgId, revision);
      const late = new Set(pending);
      return {
        revision,
        complete: pending.length === 0,
        waited_ms: waited,
        confirmed: online.filter((g) => !late.has(g)).map((g) => ({ ...g, applied_revision: applied(g) })),
        pending: pending.map((g) => ({ ...g, applied_revision: applied(g) })),
      };
    }
    await app.ackNotifier.wait(orgId, seen, timeoutMs - waited, NEVER);
    seen = app.ackNotifier.version(orgId);
    // Only an acknowledgement written by another replica needs the table read again: those
    // that arrive here are counted without a query (50 gateways acknowledging one change
    // used to mean up to 50 reads of the fleet's rows).
    if (app.ackWriter.remoteVersion(orgId) !== remote) {
      remote = app.ackWriter.remoteVersion(orgId);
      online = await readOnline();
      pending = online;
    }
    pending = pending.filter((g) => applied(g) < revision);
  }
}
