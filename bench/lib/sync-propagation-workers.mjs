// Key sync bench, part 1: propagation of admin writes to gateways running in worker threads.
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { absNow, startGateways, startWorkerFleet, stopGateways } from "./sync-fleet.mjs";
import { progress, say, summarize } from "./sync-helpers.mjs";
import { measurePropagation } from "./sync-propagation-inline.mjs";
import { settings } from "./sync-settings.mjs";

// ---------------------------------------------------------------- part 1: propagation

export async function propagation(env, count, writes) {
  const label = `propagation N=${count}`;
  const workers = Math.min(settings.workers, count);
  say(`[${label}] starting ${count} gateway(s)${workers ? ` in ${workers} worker thread(s)` : " on the main thread"}…`);
  const tStart = performance.now();
  let fleet;
  try {
    if (workers) {
      fleet = await startWorkerFleet(env, count, workers, `n${count}`);
      const result = await measurePropagationWorkers(env, fleet, count, writes, label, performance.now() - tStart);
      await stopGateways(env, fleet);
      result.workers_exited_on_their_own = fleet.exitedOnTheirOwn;
      return result;
    }
    fleet = await startGateways(env, count, `n${count}`);
    return await measurePropagation(env, fleet, count, writes, label, performance.now() - tStart);
  } finally {
    env.onIndexEvent = () => {};
    env.onFleetFailure = undefined;
    if (fleet) await stopGateways(env, fleet);
    else for (const f of [...env.live]) await stopGateways(env, f).catch(() => {});
  }
}

/**
 * Worker mode: t0 (absolute ms) before each admin call; the write counts once
 * every gateway has reported it (instrumented upsert or delete, stamped in its
 * worker). The main thread only sees the stamps, so how late it reads them does
 * not change the figures; it only delays the next write.
 */
async function measurePropagationWorkers(env, fleet, count, writes, label, startupMs) {
  say(
    `[${label}] ${count} gateway(s) in ${fleet.threads.length} worker(s) ready in ${Math.round(startupMs)} ms; ${writes} creates then ${writes} deletes`,
  );

  // `${op}:${id}` → { at: absolute ms per gateway, got, done() }
  const arrivals = new Map();
  const rowFor = (key) => {
    let row = arrivals.get(key);
    if (!row) arrivals.set(key, (row = { at: new Array(count).fill(null), got: 0, done: null }));
    return row;
  };
  env.onIndexEvent = (gi, op, id, at) => {
    const row = rowFor(`${op}:${id}`);
    if (row.at[gi] !== null) return;
    row.at[gi] = at;
    if (++row.got === count) row.done?.();
  };
  let fleetFailure = null;
  const failureWaiters = new Set();
  env.onFleetFailure = (err) => {
    fleetFailure ??= err;
    for (const reject of failureWaiters) reject(err);
  };
  /** Resolves with the per-gateway stamps once all `count` gateways reported `key`. */
  function allReported(key, deadlineAbs, what) {
    const row = rowFor(key);
    if (row.got === count) return Promise.resolve(row.at);
    return new Promise((resolve, reject) => {
      if (fleetFailure) return reject(fleetFailure);
      const timer = setTimeout(
        () => {
          failureWaiters.delete(reject);
          reject(
            new Error(
              `timed out after ${settings.opTimeoutMs} ms waiting for ${what} (${row.got}/${count} gateways reported)`,
            ),
          );
        },
        Math.max(0, deadlineAbs - absNow()),
      );
      failureWaiters.add(reject);
      row.done = () => {
        clearTimeout(timer);
        failureWaiters.delete(reject);
        resolve(row.at);
      };
    });
  }

  const out = {
    create: { all: [], first: [], per_gateway: [], admin: [], before_response: 0 },
    delete: { all: [], first: [], per_gateway: [], admin: [], before_response: 0 },
  };
  const record = (bucket, at, t0, tResponse) => {
    const rel = at.map((t) => t - t0);
    const last = Math.max(...rel);
    bucket.all.push(last);
    bucket.first.push(Math.min(...rel));
    // Gateways that had it later than halfway between the first and the last: one straggler, or the whole fleet?
    const mid = (Math.min(...rel) + last) / 2;
    (bucket.late ??= []).push(rel.flatMap((t, gi) => (t > mid ? [gi] : [])));
    bucket.per_gateway.push(...rel);
    bucket.admin.push(tResponse - t0);
    if (t0 + last <= tResponse) bucket.before_response++;
  };
  /** The 3 slowest writes (0-based index in their sequence), to tell a one-off (warm-up, GC) from a steady tail. */
  const slowest = (bucket) =>
    bucket.all
      .map((v, write) => ({
        write,
        all_ms: Math.round(v * 10) / 10,
        first_ms: Math.round(bucket.first[write] * 10) / 10,
        admin_call_ms: Math.round(bucket.admin[write] * 10) / 10,
        // Gateway indexes that had it later than halfway between the first and the last (at most 10 listed).
        late_gateways: bucket.late[write].length > 10 ? `${bucket.late[write].length} gateways` : bucket.late[write],
      }))
      .sort((a, b) => b.all_ms - a.all_ms)
      .slice(0, 3);
  let lastRevision = 0;
  const created = [];
  await Promise.all(fleet.threads.map((t) => t.request("measure")));
  const elu0 = performance.eventLoopUtilization();

  for (let w = 0; w < writes; w++) {
    const t0 = absNow();
    const { json: key, revision } = await env.admin.post("/internal/api-keys", {
      name: `bench-${count}-${w}`,
      user_id: env.userId,
    });
    const tResponse = absNow();
    lastRevision = Math.max(lastRevision, revision || 0);
    const k = `upsert:${key.id}`;
    const at = await allReported(k, t0 + settings.opTimeoutMs, `key ${key.id} on every gateway`);
    arrivals.delete(k);
    record(out.create, at, t0, tResponse);
    created.push(key.id);
    progress(label, w + 1, writes * 2);
    await sleep(Math.random() * settings.pauseMs);
  }

  for (let w = 0; w < created.length; w++) {
    const id = created[w];
    const k = `delete:${id}`;
    const t0 = absNow();
    // Listening before the call: a gateway may apply the delete before the response is back.
    const reported = allReported(k, t0 + settings.opTimeoutMs, `key ${id} to disappear from every gateway`);
    reported.catch(() => {});
    const r = await env.admin.delete(`/internal/api-keys/${id}`);
    const tResponse = absNow();
    lastRevision = Math.max(lastRevision, r.revision || 0);
    const at = await reported;
    arrivals.delete(k);
    record(out.delete, at, t0, tResponse);
    progress(label, writes + w + 1, writes * 2);
    await sleep(Math.random() * settings.pauseMs);
  }
  const mainElu = performance.eventLoopUtilization(elu0).utilization;

  // Sanity: every gateway ends at the revision of the last write; and the gateways' apply times.
  const reports = await Promise.all(
    fleet.threads.map((t) => t.request("settle", { revision: lastRevision, timeoutMs: settings.opTimeoutMs })),
  );
  const revisions = reports.flatMap((r) => r.revisions);
  const applyMs = reports.reduce((sum, r) => sum + r.applyMs, 0);
  const applies = reports.reduce((sum, r) => sum + r.applies, 0);
  const round3 = (v) => (v === null ? null : Math.round(v * 1000) / 1000);
  return {
    gateways: count,
    writes,
    mode: "workers",
    workers: fleet.threads.length,
    startup_ms: Math.round(startupMs),
    create: {
      all_applied_instrumented_ms: summarize(out.create.all),
      first_applied_instrumented_ms: summarize(out.create.first),
      per_gateway_applied_instrumented_ms: summarize(out.create.per_gateway),
      admin_call_ms: summarize(out.create.admin),
      applied_on_all_before_admin_response: out.create.before_response,
      slowest: slowest(out.create),
    },
    delete: {
      all_gone_instrumented_ms: summarize(out.delete.all),
      first_gone_instrumented_ms: summarize(out.delete.first),
      per_gateway_gone_instrumented_ms: summarize(out.delete.per_gateway),
      admin_call_ms: summarize(out.delete.admin),
      gone_from_all_before_admin_response: out.delete.before_response,
      slowest: slowest(out.delete),
    },
    revision_check: { expected: lastRevision, min: Math.min(...revisions), max: Math.max(...revisions) },
    gateway_apply_ms_mean: applies ? round3(applyMs / applies) : null,
    batches_applied: applies,
    // The slowest single applyChanges among all gateways, and how many gateways had one over 10 ms (and at which batch).
    gateway_apply_slowest: (() => {
      const all = reports.flatMap((r) => r.slowApplies).sort((a, b) => b.ms - a.ms);
      const over = all.filter((a) => a.ms > 10);
      return {
        max_ms: all[0]?.ms ?? null,
        gateways_over_10ms: over.length,
        batches_over_10ms: [...new Set(over.map((a) => a.batch))].slice(0, 10),
      };
    })(),
    // Share of wall time each event loop was busy during the writes (1 = saturated).
    event_loop_utilization: { main: round3(mainElu), workers: reports.map((r) => round3(r.elu)) },
  };
}
