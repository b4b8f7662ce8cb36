// Key sync bench: the markdown summary of the results.
// ---------------------------------------------------------------- report

export const ms = (v) => (v === null || v === undefined ? "–" : v.toFixed(1));
const fmt = (v) =>
  v === null || v === undefined
    ? "–"
    : typeof v === "number"
      ? Number.isInteger(v)
        ? String(v)
        : v.toFixed(1)
      : String(v);

/** A markdown table after a blank line: header row, alignment row, then the rows. */
function table(header, alignment, rows) {
  return ["", header, alignment, ...rows];
}

/** Per fleet size: how long a create and a delete took to reach every gateway. */
function propagationTable(propagation) {
  return table(
    "| gateways | operation | samples | p50 | p90 | p99 | max | first gateway p50 | admin call p50 | admin call p99 |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    propagation.flatMap((p) => {
      const c = p.create;
      const d = p.delete;
      const row = (op, s, first, admin) =>
        `| ${p.gateways} | ${op} | ${s.n} | ${ms(s.p50)} | ${ms(s.p90)} | ${ms(s.p99)} | ${ms(s.max)} | ${first ? ms(first.p50) : ""} | ${admin ? ms(admin.p50) : ""} | ${admin ? ms(admin.p99) : ""} |`;
      if (p.mode === "workers") {
        return [
          row(
            "create → applied on all (instrumented)",
            c.all_applied_instrumented_ms,
            c.first_applied_instrumented_ms,
            c.admin_call_ms,
          ),
          row(
            "delete → removed from all (instrumented)",
            d.all_gone_instrumented_ms,
            d.first_gone_instrumented_ms,
            d.admin_call_ms,
          ),
        ];
      }
      return [
        row("create → visible on all (lookup)", c.all_visible_ms, null, c.admin_call_ms),
        row("create → applied on all (instrumented)", c.all_applied_instrumented_ms, c.first_applied_instrumented_ms),
        row("delete → gone from all (lookup)", d.all_gone_ms, d.first_gone_ms, d.admin_call_ms),
      ];
    }),
  );
}

/** Per fleet size: start-up, apply cost, event-loop load and the revision every gateway ended on. */
function fleetTable(propagation) {
  const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 100)} %`);
  return table(
    "| gateways | threads | fleet start → all ready ms | batches applied | gateway apply ms/batch (mean) | × gateways | event loop busy during the writes (main; workers) | final revision on every gateway |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    propagation.map((p) => {
      const rc = p.revision_check;
      const same = rc && rc.min === rc.expected && rc.max === rc.expected;
      const elu = p.event_loop_utilization;
      return `| ${p.gateways} | ${p.workers ? `main + ${p.workers}` : "1"} | ${fmt(p.startup_ms)} | ${fmt(p.batches_applied)} | ${p.gateway_apply_ms_mean === null ? "–" : p.gateway_apply_ms_mean.toFixed(2)} | ${p.gateway_apply_ms_mean === null ? "–" : (p.gateway_apply_ms_mean * p.gateways).toFixed(1)} | ${elu ? `${pct(elu.main)}; ${elu.workers.map(pct).join(", ")}` : "–"} | ${rc ? `${rc.expected}${same ? " (all)" : ` (min ${rc.min}, max ${rc.max})`}` : "–"} |`;
    }),
  );
}

/** Per key count: what a fresh gateway's first snapshot costs. */
function snapshotTable(snapshot) {
  return table(
    "| keys | seeded via | start → ready ms | transfer ms | apply ms | keys/s | RSS Δ at ready MiB | RSS Δ after GC MiB | heap+external Δ after GC MiB | gateway.db MiB |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    snapshot.map(
      (s) =>
        `| ${s.keys.toLocaleString("en-US")} | ${s.seed_path} (${fmt(s.seed_ms)} ms) | ${fmt(s.start_to_ready_ms)} | ${fmt(s.transfer_ms)} | ${fmt(s.apply_ms)} | ${fmt(s.keys_per_s)} | ${fmt(s.rss_delta_at_ready_mib)} | ${fmt(s.rss_delta_retained_mib)} | ${fmt(s.heap_delta_retained_mib)} | ${fmt(s.gateway_db_mib)} |`,
    ),
  );
}

export function markdown(results) {
  const modeText = results.workers
    ? `gateways in ${results.workers} worker thread(s), control plane on the main thread`
    : "control plane and all gateways on one thread";
  const lines = [
    `### Propagation (${results.database}; ${modeText}) — ms, nearest-rank percentiles`,
    ...propagationTable(results.propagation),
    ...fleetTable(results.propagation),
    "",
  ];
  if (results.snapshot.length) {
    lines.push(`### Snapshot to a fresh gateway (${results.database})`, ...snapshotTable(results.snapshot), "");
  }
  const target = results.propagation.find((p) => p.gateways === 50);
  if (target && target.mode === "workers") {
    // From before the admin call until the last gateway's index has the change (stamped right after the index call returns).
    const c = target.create.all_applied_instrumented_ms.p99;
    const d = target.delete.all_gone_instrumented_ms.p99;
    const met = Math.max(c ?? Infinity, d ?? Infinity) < 100;
    lines.push(
      `Target p99 < 100 ms with 50 gateways (from before the admin call until every gateway's index has the change; gateways in ${target.workers} worker threads): create ${fmt(c)} ms, delete ${fmt(d)} ms → **${met ? "met" : "not met"}**.`,
    );
  } else if (target) {
    const c = target.create.all_visible_ms.p99;
    const a = target.create.all_applied_instrumented_ms.p99;
    const d = target.delete.all_gone_ms.p99;
    // Strict reading: from before the admin call until every gateway's index answers.
    const met = Math.max(c ?? Infinity, d ?? Infinity) < 100;
    lines.push(
      `Target p99 < 100 ms with 50 gateways (from before the admin call until every gateway's index answers; everything on one thread): create ${fmt(c)} ms, delete ${fmt(d)} ms → **${met ? "met" : "not met"}** (create applied on all, instrumented: ${fmt(a)} ms).`,
    );
  }
  return lines.join("\n");
}
