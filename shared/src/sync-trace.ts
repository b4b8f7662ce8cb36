import { performance } from "node:perf_hooks";

/**
 * The stages of one key change, in order, across both services: what
 * `TOLLGATE_SYNC_TRACE=1` stamps (see bench/README.md, "Where the time goes").
 */
export type SyncTraceStage =
  | "commit"
  | "notify"
  | "wake"
  | "feed_read"
  | "encode"
  | "stream_write"
  | "receive"
  | "sqlite_apply"
  | "index_swap"
  | "ack_sent"
  | "ack_received"
  | "ack_written"
  | "ack_answered"
  | "receipt";

let sink: ((line: string) => void) | undefined;

/** Turns the trace on for this process; each stamp is one JSON line on stderr (or `write`). */
export function enableSyncTrace(write: (line: string) => void = (line) => process.stderr.write(line)): void {
  sink = write;
}

/** Whether stamps are written: callers skip building what only a stamp would use. */
export function syncTraceEnabled(): boolean {
  return sink !== undefined;
}

/**
 * Stamps a stage of the change that carries `revision`. Off by default: one
 * branch on the sync path. Times are `performance.timeOrigin + now()`, in
 * milliseconds with microsecond precision, comparable across processes of one host.
 */
export function syncTrace(stage: SyncTraceStage, orgId: string, revision: number, gatewayId?: string): void {
  if (sink === undefined) return;
  const t = performance.timeOrigin + performance.now();
  sink(
    `${JSON.stringify({ sync_trace: stage, org: orgId, rev: revision, ...(gatewayId ? { gw: gatewayId } : {}), t })}\n`,
  );
}
