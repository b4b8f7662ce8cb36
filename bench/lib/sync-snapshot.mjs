// Key sync bench, part 2: seeding keys and loading a full snapshot into a fresh gateway.
import { statSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createGateway, loadConfig as loadGatewayConfig } from "@tollgate/gateway";
import { generateApiKey, newId } from "@tollgate/shared";
import { stopGateways } from "./sync-fleet.mjs";
import { pollUntil, progress, say, settledMemory } from "./sync-helpers.mjs";
import { settings } from "./sync-settings.mjs";

// ---------------------------------------------------------------- part 2: snapshot

const BULK_CHUNK = 10_000;
const DIRECT_CHUNK = 1_000;

/** Adds `count` keys: through POST /internal/api-keys/bulk when the control plane has it, else straight into api_keys. */
async function seedKeys(env, count, label) {
  let done = 0;
  const t0 = performance.now();
  while (done < count) {
    const n = Math.min(count - done, env.seedPath === "direct" ? DIRECT_CHUNK : BULK_CHUNK);
    if (env.seedPath !== "direct") {
      try {
        const keys = Array.from({ length: n }, (_, i) => ({
          name: `snap-${env.seeded + done + i}`,
          user_id: env.userId,
        }));
        await env.admin.post("/internal/api-keys/bulk", { keys });
        env.seedPath = "bulk";
      } catch (err) {
        if (env.seedPath === undefined && (err.status === 404 || err.status === 405)) {
          env.seedPath = "direct";
          say(
            `[${label}] POST /internal/api-keys/bulk not available (${err.status}); inserting into api_keys directly`,
          );
          continue;
        }
        throw err;
      }
    } else {
      const now = new Date();
      const rows = Array.from({ length: n }, (_, i) => {
        const minted = generateApiKey();
        return {
          id: newId("ak"),
          org_id: env.cp.context.defaultOrgId,
          user_id: env.userId,
          name: `snap-${env.seeded + done + i}`,
          key_hash: minted.hash,
          key_prefix: minted.prefix,
          status: "active",
          expires_at: null,
          created_at: now,
          updated_at: now,
        };
      });
      await env.cp.context.db.insertInto("api_keys").values(rows).execute();
    }
    done += n;
    progress(`${label} seeding`, done, count);
  }
  env.seeded += count;
  return performance.now() - t0;
}

export async function snapshot(env, size) {
  const label = `snapshot ${size.toLocaleString("en-US")} keys`;
  const need = size - env.seeded;
  const seedMs = need > 0 ? await seedKeys(env, need, label) : 0;
  if (need > 0) say(`[${label}] seeded ${need} keys via ${env.seedPath} in ${Math.round(seedMs)} ms`);

  const dataDir = join(env.tmpRoot, `snapshot-${size}`);
  const config = loadGatewayConfig({
    CONTROL_PLANE_URL: env.controlPlaneUrl,
    GATEWAY_TOKEN: env.gatewayToken,
    GATEWAY_NAME: `bench-snapshot-${size}`,
    DATA_DIR: dataDir,
    HOST: "127.0.0.1",
    PORT: "0",
    STATUS_PORT: "0",
    LOG_LEVEL: "silent",
  });
  const before = settledMemory();
  const gateway = createGateway(config, { logger: env.logger });
  const ctx = gateway.context;
  // Instrumentation: time the SQLite transaction + index swap, i.e. what the "applied key snapshot" log line follows.
  // The gateway checks and compiles each chunk as it arrives (during "transfer"); "apply" is the commit at snapshotEnd.
  let applyMs = null;
  let snapshotArrivedAt = null;
  const commit = ctx.keyCache.commitSnapshot ?? ctx.keyCache.applySnapshot;
  const wrapped = function (s) {
    snapshotArrivedAt = performance.now();
    const out = commit.call(this, s);
    applyMs = performance.now() - snapshotArrivedAt;
    return out;
  };
  if (ctx.keyCache.commitSnapshot) ctx.keyCache.commitSnapshot = wrapped;
  else ctx.keyCache.applySnapshot = wrapped;
  say(`[${label}] starting a fresh gateway…`);
  const member = [{ gateway, dataDir }];
  env.live.add(member);
  const t0 = performance.now();
  // CPU of this whole process (control plane and gateway both run in it): steadier than wall time on a shared machine.
  const cpu0 = process.cpuUsage();
  const load0 = os.loadavg()[0];
  await gateway.start();
  await pollUntil(() => ctx.syncState.ready, settings.readyTimeoutMs, `the ${size}-key snapshot`);
  const readyMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const rssAtReady = process.memoryUsage().rss;
  const indexed = ctx.keyIndex.size;
  const retained = settledMemory();
  const dbBytes = (() => {
    try {
      return ["gateway.db", "gateway.db-wal"].reduce((sum, f) => {
        try {
          return sum + statSync(join(dataDir, f)).size;
        } catch {
          return sum;
        }
      }, 0);
    } catch {
      return null;
    }
  })();
  await stopGateways(env, member);
  const mib = (b) => Math.round((b / 1024 ** 2) * 10) / 10;
  const result = {
    keys: size,
    indexed,
    seed_path: need > 0 ? env.seedPath : "reused",
    seed_ms: Math.round(seedMs),
    start_to_ready_ms: Math.round(readyMs),
    cpu_to_ready_ms: Math.round((cpu.user + cpu.system) / 1000),
    load_average: [load0, os.loadavg()[0]].map((l) => Math.round(l * 100) / 100),
    transfer_ms: applyMs === null ? null : Math.round(snapshotArrivedAt - t0),
    apply_ms: applyMs === null ? null : Math.round(applyMs),
    keys_per_s: Math.round(size / (readyMs / 1000)),
    rss_delta_at_ready_mib: mib(rssAtReady - before.rss),
    rss_delta_retained_mib: mib(retained.rss - before.rss),
    heap_delta_retained_mib: mib(retained.held - before.held),
    gateway_db_mib: dbBytes === null ? null : mib(dbBytes),
  };
  say(
    `[${label}] ready in ${result.start_to_ready_ms} ms (transfer ${result.transfer_ms} ms, apply ${result.apply_ms} ms; process CPU ${result.cpu_to_ready_ms} ms; load ${result.load_average.join(" → ")}), ${indexed} keys indexed`,
  );
  return result;
}
