// Key sync bench: the admin API client and the gateway fleets (in this thread or in workers).
import { rmSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import { createGateway, loadConfig as loadGatewayConfig } from "@tollgate/gateway";
import { pollUntil, say } from "./sync-helpers.mjs";
import { settings } from "./sync-settings.mjs";

// ---------------------------------------------------------------- admin API

export function adminClient(baseUrl, masterKey) {
  async function call(method, path, body) {
    const res = await fetch(baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${masterKey}`, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    const json = text ? JSON.parse(text) : null;
    if (!res.ok) {
      const err = new Error(`${method} ${path} → ${res.status}: ${text.slice(0, 300)}`);
      err.status = res.status;
      throw err;
    }
    return { json, revision: Number(res.headers.get("x-tollgate-revision") ?? NaN) };
  }
  return {
    post: (path, body) => call("POST", path, body),
    delete: (path) => call("DELETE", path),
    get: (path) => call("GET", path),
  };
}

// ---------------------------------------------------------------- gateways

/**
 * Starts `count` real gateways with their own DATA_DIR and waits until each
 * has applied its first snapshot. Each key index is wrapped (instrumentation
 * only) to note when an upsert or delete lands in memory.
 */
export async function startGateways(env, count, label) {
  const fleet = [];
  for (let i = 0; i < count; i++) {
    const dataDir = join(env.tmpRoot, `${label}-gw-${i}`);
    const config = loadGatewayConfig({
      CONTROL_PLANE_URL: env.controlPlaneUrl,
      GATEWAY_TOKEN: env.gatewayToken,
      GATEWAY_NAME: `bench-${label}-${i}`,
      DATA_DIR: dataDir,
      HOST: "127.0.0.1",
      PORT: "0",
      STATUS_PORT: "0",
      LOG_LEVEL: "silent",
    });
    const gateway = createGateway(config, { logger: env.logger });
    const member = { gateway, dataDir, index: i };
    const keyIndex = gateway.context.keyIndex;
    const upsert = keyIndex.upsert;
    const del = keyIndex.delete;
    keyIndex.upsert = function (k) {
      const out = upsert.call(this, k);
      // A StoredKey ({ id }) or, in newer gateways, a compiled key ({ record: { id } }).
      env.onIndexEvent(i, "upsert", k?.record?.id ?? k?.id);
      return out;
    };
    keyIndex.delete = function (id) {
      const out = del.call(this, id);
      env.onIndexEvent(i, "delete", id);
      return out;
    };
    // Time spent applying change batches (SQLite transaction + index), summed per gateway.
    const keyCache = gateway.context.keyCache;
    const applyChanges = keyCache.applyChanges;
    member.applyMs = 0;
    member.applies = 0;
    keyCache.applyChanges = function (changes) {
      const t = performance.now();
      try {
        return applyChanges.call(this, changes);
      } finally {
        member.applyMs += performance.now() - t;
        member.applies++;
      }
    };
    fleet.push(member);
  }
  env.live.add(fleet);
  await Promise.all(fleet.map((m) => m.gateway.start()));
  await pollUntil(
    () => fleet.every((m) => m.gateway.context.syncState.ready && m.gateway.context.syncState.connected),
    60_000,
    `${count} gateways to apply their first snapshot`,
  );
  return fleet;
}

export async function stopGateways(env, fleet) {
  env.live.delete(fleet);
  if (fleet.stop) return fleet.stop();
  await Promise.all(fleet.map((m) => m.gateway.stop()));
  for (const m of fleet) rmSync(m.dataDir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- gateways in worker threads

/** Absolute high-resolution ms, comparable between the main thread and the workers. */
export const absNow = () => performance.timeOrigin + performance.now();

const WORKER_EXIT_TIMEOUT_MS = 15_000;

/**
 * Starts `count` real gateways spread over `workerCount` worker threads
 * (gateway i in worker i mod workerCount) and waits until every one has applied
 * its first snapshot. Index events arrive through `env.onIndexEvent(i, op, id, at)`.
 */
export async function startWorkerFleet(env, count, workerCount, label) {
  const shards = Array.from({ length: Math.min(workerCount, count) }, () => []);
  for (let i = 0; i < count; i++) shards[i % shards.length].push(i);
  let nextReq = 0;
  const threads = shards.map((gatewayIndexes, w) => {
    const worker = new Worker(new URL("../sync-gateway-worker.mjs", import.meta.url), {
      workerData: {
        controlPlaneUrl: env.controlPlaneUrl,
        gatewayToken: env.gatewayToken,
        tmpRoot: env.tmpRoot,
        label,
        gatewayIndexes,
        logLevel: settings.logLevel,
        readyTimeoutMs: 60_000,
      },
    });
    const t = { worker, index: w, gatewayIndexes, pending: new Map(), failure: null };
    t.exited = new Promise((resolve) => worker.once("exit", resolve));
    const fail = (err) => {
      t.failure ??= err;
      for (const { reject } of t.pending.values()) reject(err);
      t.pending.clear();
      env.onFleetFailure?.(err);
    };
    t.ready = new Promise((resolve, reject) => {
      worker.on("message", (m) => {
        if (m.type === "index") env.onIndexEvent(m.gatewayIndex, m.op, m.id, m.at);
        else if (m.type === "ready") resolve();
        else if (m.type === "failed") {
          reject(new Error(m.error));
          fail(new Error(`worker ${w}: ${m.error}`));
        } else if (m.reqId !== undefined) {
          const p = t.pending.get(m.reqId);
          t.pending.delete(m.reqId);
          if (m.error) p?.reject(new Error(`worker ${w}: ${m.error}`));
          else p?.resolve(m);
        }
      });
      worker.once("error", (err) => {
        reject(err);
        fail(err);
      });
      t.exited.then((code) => {
        const err = new Error(`worker ${w} exited (code ${code})`);
        reject(err);
        if (!t.stopping) fail(err);
      });
    });
    t.request = (type, payload = {}) =>
      new Promise((resolve, reject) => {
        if (t.failure) return reject(t.failure);
        const reqId = nextReq++;
        t.pending.set(reqId, { resolve, reject });
        worker.postMessage({ type, reqId, ...payload });
      });
    return t;
  });

  let stopping;
  const fleet = {
    count,
    threads,
    exitedOnTheirOwn: null,
    stop() {
      stopping ??= (async () => {
        let own = true;
        await Promise.all(
          threads.map(async (t) => {
            t.stopping = true;
            await t.request("stop").catch(() => {});
            const timer = sleep(WORKER_EXIT_TIMEOUT_MS, "timeout", { ref: false });
            if ((await Promise.race([t.exited, timer])) === "timeout") {
              own = false;
              say(
                `worker ${t.index} still running ${WORKER_EXIT_TIMEOUT_MS} ms after its gateways stopped: terminating it`,
              );
              await t.worker.terminate();
            }
          }),
        );
        fleet.exitedOnTheirOwn = own;
      })();
      return stopping;
    },
  };
  env.live.add(fleet);
  await Promise.all(threads.map((t) => t.ready));
  return fleet;
}
