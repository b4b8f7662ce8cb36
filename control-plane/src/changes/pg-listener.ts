import type pg from "pg";
import type { Logger } from "@tollgate/shared";
import type { ChangeNotifier } from "./notifier.js";
import type { StreamRegistry } from "./stream-registry.js";
import { ACKS_PREFIX, CHANGES_CHANNEL, REVOKED_TOKEN_PREFIX } from "./channels.js";

/**
 * LISTENs for commits made through any control-plane replica and wakes the
 * local streams of that organization. Reconnects on its own; while it is down,
 * streams still see new changes at their next heartbeat, when they re-read the log.
 */
export function startChangeListener({
  pool,
  notifier,
  acksWritten,
  streams,
  logger,
}: {
  pool: pg.Pool;
  notifier: ChangeNotifier;
  /** Acknowledgements written (by any replica), for the receipts waiting here: the payload after ACKS_PREFIX. */
  acksWritten: (payload: string) => void;
  streams: StreamRegistry;
  logger: Logger;
}): { stop(): Promise<void> } {
  let client: pg.PoolClient | undefined;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    if (stopped) return;
    try {
      client = await pool.connect();
      client.on("notification", (msg) => {
        if (msg.channel !== CHANGES_CHANNEL || !msg.payload) return;
        if (msg.payload.startsWith(ACKS_PREFIX)) acksWritten(msg.payload.slice(ACKS_PREFIX.length));
        else if (msg.payload.startsWith(REVOKED_TOKEN_PREFIX))
          streams.revokeToken(msg.payload.slice(REVOKED_TOKEN_PREFIX.length));
        else notifier.notify(msg.payload);
      });
      client.on("error", (err) => {
        logger.warn({ err }, "change listener connection lost; reconnecting");
        client?.release(err);
        client = undefined;
        schedule();
      });
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (err) {
      logger.warn({ err }, "could not LISTEN for changes; retrying");
      client?.release(err as Error);
      client = undefined;
      schedule();
    }
  };
  const schedule = () => {
    if (!stopped) retryTimer = setTimeout(() => void connect(), 1000);
  };
  void connect();
  return {
    async stop() {
      stopped = true;
      clearTimeout(retryTimer);
      client?.release();
      client = undefined;
    },
  };
}
