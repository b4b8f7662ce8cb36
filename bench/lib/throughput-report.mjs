// Gateway throughput bench: the results table, the verdicts, and the gateway's metrics and request log.
import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fmtInt, round1 } from "./proc-stats.mjs";
import { MB, ROOT, say, settings } from "./throughput-settings.mjs";

// ---------------------------------------------------------------- report

function pad(s, n, right = false) {
  s = String(s);
  return right ? s.padStart(n) : s.padEnd(n);
}

export function printTable(cells) {
  const header = [
    pad("mode", 7),
    pad("conns", 5, true),
    pad("target", 10),
    pad("req/s", 8, true),
    pad("per round", 17, true),
    pad("p50 ms", 7, true),
    pad("p90 ms", 7, true),
    pad("p99 ms", 7, true),
    pad("err", 4, true),
    pad("non2xx", 6, true),
    pad("peak RSS MB", 11, true),
    pad("CPU µs/req", 10, true),
    pad("CPU % proc; upstream; driver; others; cp", 40, true),
  ].join("  ");
  console.log(header);
  console.log("-".repeat(header.length));
  for (const cell of cells) {
    for (const t of settings.targets) {
      const r = cell.targets[t];
      if (!r) continue;
      if (r.skipped) {
        console.log(
          [pad(cell.mode, 7), pad(cell.connections, 5, true), pad(t, 10), `skipped: ${r.skipped}`].join("  "),
        );
        continue;
      }
      const own = t === "direct" ? "upstream" : t;
      console.log(
        [
          pad(cell.mode, 7),
          pad(cell.connections, 5, true),
          pad(t, 10),
          pad(fmtInt(r.rps), 8, true),
          pad(r.rounds.map((x) => fmtInt(x.rps)).join(" / "), 17, true),
          pad(r.latency.p50_ms?.toFixed(3) ?? "–", 7, true),
          pad(r.latency.p90_ms?.toFixed(3) ?? "–", 7, true),
          pad(r.latency.p99_ms?.toFixed(3) ?? "–", 7, true),
          pad(r.errors + r.timeouts, 4, true),
          pad(r.non2xx, 6, true),
          pad(t === "direct" ? "–" : (r.peak_rss_mb?.[own] ?? "–"), 11, true),
          pad(r.cpu_us_per_req?.[own] ?? "–", 10, true),
          pad(
            `${t === "direct" ? "–" : r.process_cpu_pct[own]}; ${r.process_cpu_pct.upstream}; ${r.driver_cpu_pct}; ${r.others_cpu_pct}; ${r.process_cpu_pct["control-plane"] ?? "–"}`,
            40,
            true,
          ),
        ].join("  "),
      );
    }
    const c = cell.comparison;
    const parts = [];
    if (c.tollgate_over_direct !== null) parts.push(`tollgate/direct ${c.tollgate_over_direct.toFixed(2)}`);
    if (c.tollgate_over_portkey !== null) parts.push(`tollgate/portkey ${c.tollgate_over_portkey.toFixed(2)}`);
    if (c.tollgate_over_bare != null) parts.push(`tollgate/bare ${c.tollgate_over_bare.toFixed(2)}`);
    if (c.tollgate_added_p50_ms !== null)
      parts.push(`added p50 ${c.tollgate_added_p50_ms.toFixed(3)} ms, p99 ${c.tollgate_added_p99_ms.toFixed(3)} ms`);
    if (c.node_proxy_added_p50_ms !== null)
      parts.push(
        `node-proxy/direct ${c.node_proxy_over_direct.toFixed(2)}, adds p50 ${c.node_proxy_added_p50_ms.toFixed(3)}, p99 ${c.node_proxy_added_p99_ms.toFixed(3)}`,
      );
    if (c.tollgate_over_baseline !== null)
      parts.push(
        `tollgate/baseline ${c.tollgate_over_baseline.toFixed(2)}, baseline adds p50 ${c.baseline_added_p50_ms?.toFixed(3)}, p99 ${c.baseline_added_p99_ms?.toFixed(3)}`,
      );
    if (c.portkey_added_p50_ms !== null)
      parts.push(`portkey adds p50 ${c.portkey_added_p50_ms.toFixed(3)}, p99 ${c.portkey_added_p99_ms.toFixed(3)}`);
    if (parts.length) console.log(`${" ".repeat(8)}→ ${parts.join("; ")}`);
  }
}

export const TARGETS = {
  added_p50_ms: 0.3,
  added_p99_ms: 1,
  throughput_vs_direct: 0.5,
  throughput_vs_portkey: 2,
  throughput_vs_bare: 0.9,
  rss_mb: 100,
};

export function verdicts(cells, gatewayPeakMb) {
  const out = [];
  for (const cell of cells) {
    const c = cell.comparison;
    const where = `${cell.mode}, ${cell.connections} conn`;
    if (c.tollgate_added_p50_ms !== null) {
      out.push({
        target: `added latency p50 ≤ ${TARGETS.added_p50_ms} ms`,
        where,
        value: c.tollgate_added_p50_ms,
        met: c.tollgate_added_p50_ms <= TARGETS.added_p50_ms,
      });
      out.push({
        target: `added latency p99 ≤ ${TARGETS.added_p99_ms} ms`,
        where,
        value: c.tollgate_added_p99_ms,
        met: c.tollgate_added_p99_ms <= TARGETS.added_p99_ms,
      });
    }
    if (c.tollgate_over_direct !== null) {
      out.push({
        target: `throughput ≥ ${TARGETS.throughput_vs_direct * 100} % of direct`,
        where,
        value: c.tollgate_over_direct,
        met: c.tollgate_over_direct >= TARGETS.throughput_vs_direct,
      });
    }
    if (c.tollgate_over_bare != null) {
      out.push({
        target: `throughput ≥ ${TARGETS.throughput_vs_bare * 100} % of bare proxy`,
        where,
        value: c.tollgate_over_bare,
        met: c.tollgate_over_bare >= TARGETS.throughput_vs_bare,
      });
    }
    if (c.tollgate_over_portkey !== null) {
      out.push({
        target: `throughput ≥ ${TARGETS.throughput_vs_portkey}× Portkey`,
        where,
        value: c.tollgate_over_portkey,
        met: c.tollgate_over_portkey >= TARGETS.throughput_vs_portkey,
      });
    }
  }
  if (gatewayPeakMb !== null) {
    out.push({
      target: `gateway RSS < ${TARGETS.rss_mb} MB under load`,
      where: "peak over all Tollgate runs",
      value: gatewayPeakMb,
      met: gatewayPeakMb < TARGETS.rss_mb,
    });
  }
  return out;
}

// ---------------------------------------------------------------- after the runs: metrics and request log

export function metricValue(text, name, labels) {
  let total = 0;
  let found = false;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(" ") + 1));
    found = true;
  }
  return found ? total : null;
}

/** Opens the stopped gateway's SQLite file read-only and counts what it logged. */
export function requestLogCounts(dataDir) {
  const file = join(dataDir, "gateway.db");
  if (!existsSync(file)) return { error: "gateway.db missing" };
  try {
    const requireGateway = createRequire(join(ROOT, "gateway", "package.json"));
    const Database = requireGateway("better-sqlite3");
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      const byStatus = db
        .prepare("SELECT status, count(*) AS n FROM request_log GROUP BY status ORDER BY status")
        .all();
      const audit = db.prepare("SELECT count(*) AS n FROM audit_log").get().n;
      const withUsage = db.prepare("SELECT count(*) AS n FROM request_log WHERE total_tokens IS NOT NULL").get().n;
      return {
        request_log_by_status: Object.fromEntries(byStatus.map((r) => [r.status, r.n])),
        request_log_with_usage: withUsage,
        audit_log_rows: audit,
        gateway_db_mb: round1(
          ["", "-wal"].reduce((n, s) => n + (existsSync(file + s) ? statSync(file + s).size : 0), 0) / MB,
        ),
      };
    } finally {
      db.close();
    }
  } catch (err) {
    return { error: err.message };
  }
}

/** The console summary: the table, the verdicts, the gateway's accounting and peak RSS. */
export function printSummary(results, cells, hasGateway) {
  say("");
  console.log(
    `\nTollgate gateway throughput (${settings.rounds} rounds × ${settings.durationS} s per target, interleaved; load ${results.machine.loadavg_1m.start} → ${results.machine.loadavg_1m.end})\n`,
  );
  printTable(cells);
  console.log("");
  for (const v of results.verdicts) {
    const value =
      typeof v.value === "number"
        ? v.target.includes("ms")
          ? `${v.value.toFixed(3)} ms`
          : v.target.includes("MB")
            ? `${v.value} MB`
            : `${v.value.toFixed(2)}×`
        : v.value;
    console.log(`${v.met ? "MET    " : "NOT MET"}  ${v.target.padEnd(32)} ${v.where.padEnd(28)} ${value}`);
  }
  if (hasGateway) {
    const mt = results.tollgate.metrics;
    const rl = results.tollgate.request_log;
    console.log(
      `\ngateway accounting: metrics 200 = ${fmtInt(mt.requests_chat_200)} (bench saw ${fmtInt(mt.bench_counted_2xx)} 2xx), 499 = ${fmtInt(mt.requests_chat_499)}; ` +
        (rl.error
          ? `request log: ${rl.error}`
          : `request_log rows ${JSON.stringify(rl.request_log_by_status)}, with usage ${fmtInt(rl.request_log_with_usage)}, gateway.db ${rl.gateway_db_mb} MB`),
    );
  }
  console.log(`peak RSS over the whole run (MB): ${JSON.stringify(results.peak_rss_mb_whole_run)}`);
}
