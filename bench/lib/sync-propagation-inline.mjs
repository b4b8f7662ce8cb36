// Key sync bench, part 1: propagation with every gateway on this thread (BENCH_WORKERS=0).
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { pollUntil, progress, say, summarize } from "./sync-helpers.mjs";
import { settings } from "./sync-settings.mjs";

export async function measurePropagation(env, fleet, count, writes, label, startupMs) {
  say(`[${label}] ${count} gateway(s) ready in ${Math.round(startupMs)} ms; ${writes} creates then ${writes} deletes`);

  // Instrumented arrival times: key id → per-gateway performance.now() of the index write.
  const arrivals = new Map();
  env.onIndexEvent = (gi, op, id) => {
    let row = arrivals.get(`${op}:${id}`);
    if (!row) arrivals.set(`${op}:${id}`, (row = new Array(count).fill(null)));
    if (row[gi] === null) row[gi] = performance.now();
  };

  const created = [];
  const out = {
    gateways: count,
    writes,
    startup_ms: Math.round(startupMs),
    create: {
      all_visible: [],
      admin_call: [],
      all_applied: [],
      first_applied: [],
      per_gateway_applied: [],
      visible_at_response: 0,
    },
    delete: { all_gone: [], first_gone: [], admin_call: [], per_gateway_gone: [] },
    revision_check: null,
  };
  let lastRevision = 0;

  for (let w = 0; w < writes; w++) {
    const t0 = performance.now();
    const { json: key, revision } = await env.admin.post("/internal/api-keys", {
      name: `bench-${count}-${w}`,
      user_id: env.userId,
    });
    const tResponse = performance.now();
    lastRevision = Math.max(lastRevision, revision || 0);
    // The index key exactly as the gateway derives it from a presented key.
    const indexKey = createHash("sha256").update(key.key).digest("binary");
    const visible = new Array(count).fill(null);
    let missing = count;
    const check = () => {
      const now = performance.now();
      for (let i = 0; i < count; i++) {
        if (visible[i] === null && fleet[i].gateway.context.keyIndex.lookup(indexKey) !== undefined) {
          visible[i] = now - t0;
          missing--;
        }
      }
      return missing === 0;
    };
    if (check()) out.create.visible_at_response++;
    await pollUntil(check, settings.opTimeoutMs, `key ${key.id} on every gateway`);
    out.create.all_visible.push(Math.max(...visible));
    out.create.admin_call.push(tResponse - t0);
    const applied = arrivals.get(`upsert:${key.id}`) ?? [];
    arrivals.delete(`upsert:${key.id}`);
    const appliedMs = applied.map((t) => (t === null ? null : t - t0));
    if (appliedMs.length === count && appliedMs.every((t) => t !== null)) {
      out.create.all_applied.push(Math.max(...appliedMs));
      out.create.first_applied.push(Math.min(...appliedMs));
      out.create.per_gateway_applied.push(...appliedMs);
    }
    created.push({ id: key.id, indexKey });
    progress(`${label}`, w + 1, writes * 2);
    await sleep(Math.random() * settings.pauseMs);
  }

  for (let w = 0; w < created.length; w++) {
    const { id, indexKey } = created[w];
    const gone = new Array(count).fill(null);
    let present = count;
    const t0 = performance.now();
    let adminMs = null;
    // The index key is known before the call, so polling runs while the DELETE is in flight.
    const call = env.admin.delete(`/internal/api-keys/${id}`).then((r) => {
      adminMs = performance.now() - t0;
      lastRevision = Math.max(lastRevision, r.revision || 0);
    });
    let failed;
    call.catch((err) => (failed = err));
    await pollUntil(
      () => {
        if (failed) throw failed;
        const now = performance.now();
        for (let i = 0; i < count; i++) {
          if (gone[i] === null && fleet[i].gateway.context.keyIndex.lookup(indexKey) === undefined) {
            gone[i] = now - t0;
            present--;
          }
        }
        return present === 0;
      },
      settings.opTimeoutMs,
      `key ${id} to disappear from every gateway`,
    );
    await call;
    arrivals.delete(`delete:${id}`);
    out.delete.all_gone.push(Math.max(...gone));
    out.delete.first_gone.push(Math.min(...gone));
    out.delete.per_gateway_gone.push(...gone);
    out.delete.admin_call.push(adminMs);
    progress(`${label}`, writes + w + 1, writes * 2);
    await sleep(Math.random() * settings.pauseMs);
  }

  // Sanity: every gateway ends at the revision of the last write.
  await pollUntil(
    () => fleet.every((m) => m.gateway.context.syncState.appliedRevision >= lastRevision),
    settings.opTimeoutMs,
    `every gateway to reach revision ${lastRevision}`,
  ).catch(() => {});
  const revisions = fleet.map((m) => m.gateway.context.syncState.appliedRevision);
  const applyMs = fleet.reduce((sum, m) => sum + m.applyMs, 0);
  const applies = fleet.reduce((sum, m) => sum + m.applies, 0);
  out.revision_check = { expected: lastRevision, min: Math.min(...revisions), max: Math.max(...revisions) };
  return {
    gateways: count,
    writes,
    mode: "single-thread",
    workers: 0,
    startup_ms: out.startup_ms,
    create: {
      all_visible_ms: summarize(out.create.all_visible),
      admin_call_ms: summarize(out.create.admin_call),
      all_applied_instrumented_ms: summarize(out.create.all_applied),
      first_applied_instrumented_ms: summarize(out.create.first_applied),
      per_gateway_applied_instrumented_ms: summarize(out.create.per_gateway_applied),
      visible_on_all_at_admin_response: out.create.visible_at_response,
    },
    delete: {
      all_gone_ms: summarize(out.delete.all_gone),
      first_gone_ms: summarize(out.delete.first_gone),
      admin_call_ms: summarize(out.delete.admin_call),
      per_gateway_gone_ms: summarize(out.delete.per_gateway_gone),
    },
    revision_check: out.revision_check,
    // Mean time one gateway spends in KeyCache.applyChanges per batch; all gateways share this one thread.
    gateway_apply_ms_mean: applies ? Math.round((applyMs / applies) * 1000) / 1000 : null,
    batches_applied: applies,
  };
}
