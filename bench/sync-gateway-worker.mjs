// Worker thread of bench/sync-propagation.mjs (BENCH_WORKERS ≥ 1): hosts a share
// of the N gateways, each the real gateway code (createGateway) with its own
// DATA_DIR, so the gateways get event loops of their own instead of sharing
// the control plane's. Not meant to be run by itself.
//
// Each gateway's key index is wrapped (instrumentation only): when an upsert or
// a delete has landed in memory, the worker posts
//   { type: "index", gatewayIndex, id, op: "upsert" | "delete", at }
// where `at` is performance.timeOrigin + performance.now(), absolute
// high-resolution ms that the main thread can compare with its own t0.
//
// Requests from the main thread ({ type, reqId, … }), answered with { reqId, … }:
//   settle { revision, timeoutMs }: wait until every gateway here has applied
//     `revision` (or the timeout), then report revisions and apply times;
//   stop: stop every gateway, remove the data dirs, answer, and let the thread
//     end on its own (nothing is left open).

import { rmSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { parentPort, workerData } from "node:worker_threads";
import { createGateway, loadConfig as loadGatewayConfig } from "@tollgate/gateway";
import { createLogger } from "@tollgate/shared";

const { controlPlaneUrl, gatewayToken, tmpRoot, label, gatewayIndexes, logLevel, readyTimeoutMs } = workerData;
const now = () => performance.timeOrigin + performance.now();
const logger = createLogger({ name: "bench-worker", level: logLevel });

const fleet = gatewayIndexes.map((gatewayIndex) => {
  const dataDir = join(tmpRoot, `${label}-gw-${gatewayIndex}`);
  const config = loadGatewayConfig({
    CONTROL_PLANE_URL: controlPlaneUrl,
    GATEWAY_TOKEN: gatewayToken,
    GATEWAY_NAME: `bench-${label}-${gatewayIndex}`,
    DATA_DIR: dataDir,
    HOST: "127.0.0.1",
    PORT: "0",
    STATUS_PORT: "0",
    LOG_LEVEL: "silent",
  });
  const gateway = createGateway(config, { logger });
  const member = { gateway, dataDir, gatewayIndex, applyMs: 0, applies: 0, slowApply: { ms: 0, batch: null } };

  const keyIndex = gateway.context.keyIndex;
  const upsert = keyIndex.upsert;
  const del = keyIndex.delete;
  // KeyIndex.upsert calls this.delete(id) first (which reaches the wrapper
  // below): that is not a removal, so it is not reported.
  let inUpsert = false;
  keyIndex.upsert = function (k) {
    inUpsert = true;
    try {
      upsert.call(this, k);
    } finally {
      inUpsert = false;
    }
    // Stamped after the call returns: from here on, lookup() answers with the key.
    parentPort.postMessage({ type: "index", gatewayIndex, id: k?.record?.id ?? k?.id, op: "upsert", at: now() });
  };
  keyIndex.delete = function (id) {
    const removed = del.call(this, id);
    if (removed && !inUpsert) parentPort.postMessage({ type: "index", gatewayIndex, id, op: "delete", at: now() });
    return removed;
  };

  // Time spent applying change batches (SQLite transaction + index), summed per gateway.
  const keyCache = gateway.context.keyCache;
  const applyChanges = keyCache.applyChanges;
  keyCache.applyChanges = function (changes) {
    const t = performance.now();
    try {
      return applyChanges.call(this, changes);
    } finally {
      const took = performance.now() - t;
      member.applyMs += took;
      member.applies++;
      if (took > member.slowApply.ms) member.slowApply = { ms: took, batch: member.applies };
    }
  };
  return member;
});

async function waitUntil(done, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

let stopped;
function stopAll() {
  stopped ??= (async () => {
    await Promise.all(fleet.map((m) => m.gateway.stop().catch(() => {})));
    for (const m of fleet) rmSync(m.dataDir, { recursive: true, force: true });
  })();
  return stopped;
}

const elu = { start: null };

parentPort.on("message", async (msg) => {
  try {
    if (msg.type === "settle") {
      await waitUntil(
        () => fleet.every((m) => m.gateway.context.syncState.appliedRevision >= msg.revision),
        msg.timeoutMs,
      );
      parentPort.postMessage({
        reqId: msg.reqId,
        revisions: fleet.map((m) => m.gateway.context.syncState.appliedRevision),
        applyMs: fleet.reduce((sum, m) => sum + m.applyMs, 0),
        applies: fleet.reduce((sum, m) => sum + m.applies, 0),
        // Per gateway: the slowest applyChanges call and its 1-based batch number.
        slowApplies: fleet.map((m) => ({
          gateway: m.gatewayIndex,
          ms: Math.round(m.slowApply.ms * 10) / 10,
          batch: m.slowApply.batch,
        })),
        // Share of the time this thread's event loop was busy since the writes began.
        elu: elu.start ? performance.eventLoopUtilization(elu.start).utilization : null,
      });
    } else if (msg.type === "measure") {
      elu.start = performance.eventLoopUtilization();
      parentPort.postMessage({ reqId: msg.reqId });
    } else if (msg.type === "stop") {
      await stopAll();
      parentPort.postMessage({ reqId: msg.reqId });
      // Nothing else holds the thread open: it ends once this port is closed.
      parentPort.close();
    }
  } catch (err) {
    parentPort.postMessage({ reqId: msg.reqId, error: err?.stack ?? String(err) });
  }
});

try {
  await Promise.all(fleet.map((m) => m.gateway.start()));
  const ready = await waitUntil(
    () => fleet.every((m) => m.gateway.context.syncState.ready && m.gateway.context.syncState.connected),
    readyTimeoutMs,
  );
  if (!ready)
    throw new Error(`worker ${label}: gateways ${gatewayIndexes.join(",")} not ready after ${readyTimeoutMs} ms`);
  parentPort.postMessage({ type: "ready" });
} catch (err) {
  await stopAll();
  parentPort.postMessage({ type: "failed", error: err?.stack ?? String(err) });
  parentPort.close();
}
