// Payload-size bench: per-cell figures from the rounds, and the console table.
import { round1, round3, Samples } from "./proc-stats.mjs";

/** The process whose CPU and RSS a target's figures are: the proxy itself, or the upstream for "direct". */
const ownProcess = (t) => (t === "direct" ? "upstream" : t);

/** Merges a cell's rounds into one figure per target, and the comparisons. */
export function summarize(cell, bodyBytes, targets, rows) {
  const out = { ...cell, body_bytes: bodyBytes, targets: {} };
  for (const t of targets) {
    const rs = rows[t];
    const ok = rs.reduce((n, r) => n + r.total.length, 0);
    const cpuS = rs.reduce((n, r) => n + (r.procs[ownProcess(t)]?.cpu_s ?? 0), 0);
    const lat = Samples.merge(rs.map((r) => r.total)).stats();
    const ttfb = Samples.merge(rs.map((r) => r.ttfb)).stats();
    const cpuUs = ok ? Math.round((cpuS / ok) * 1e6) : null;
    out.targets[t] = {
      ok,
      non2xx: rs.reduce((n, r) => n + r.non2xx, 0),
      rps: round1(ok / rs.reduce((n, r) => n + r.elapsedS, 0)),
      p50_ms: lat.p50_ms,
      p99_ms: lat.p99_ms,
      ttfb_p50_ms: cell.chunks ? ttfb.p50_ms : null,
      ttfb_p99_ms: cell.chunks ? ttfb.p99_ms : null,
      cpu_us_per_req: cpuUs,
      cpu_us_per_chunk: cell.chunks && cpuUs !== null ? round3(cpuUs / cell.chunks) : null,
      peak_rss_mb: Math.max(...rs.map((r) => r.procs[ownProcess(t)]?.peak_rss_mb ?? 0)),
      upstream_cpu_us_per_req: ok
        ? Math.round((rs.reduce((n, r) => n + (r.procs.upstream?.cpu_s ?? 0), 0) / ok) * 1e6)
        : null,
      others_cpu_pct: Math.max(...rs.map((r) => r.procs.machine?.others_cpu_pct ?? 0)),
      answer_bytes: rs.at(-1)?.answerBytes ?? null,
    };
  }
  const T = out.targets;
  const d = T.direct;
  for (const t of targets.filter((x) => x !== "direct")) {
    T[t].added_p50_ms = round3(T[t].p50_ms - d.p50_ms);
    T[t].added_p99_ms = round3(T[t].p99_ms - d.p99_ms);
    if (cell.chunks) T[t].added_ttfb_p50_ms = round3(T[t].ttfb_p50_ms - d.ttfb_p50_ms);
    if (t !== "bare" && T.bare) {
      T[t].cpu_over_bare = T.bare.cpu_us_per_req ? round3(T[t].cpu_us_per_req / T.bare.cpu_us_per_req) : null;
      T[t].cpu_minus_bare_us = T[t].cpu_us_per_req - T.bare.cpu_us_per_req;
    }
  }
  return out;
}

const pad = (s, n, right = true) => (right ? String(s ?? "–").padStart(n) : String(s ?? "–").padEnd(n));

export function printSizes(results) {
  console.log(
    `\nPayload sizes, ${results.settings.connections} connection(s), ${results.settings.rounds} interleaved rounds × ${results.settings.cellS} s (load ${results.machine.loadavg_1m.start} → ${results.machine.loadavg_1m.end}; wall figures on a loaded machine)\n`,
  );
  const header = [
    pad("cell", 38, false),
    pad("target", 9, false),
    pad("req/s", 7),
    pad("p50 ms", 8),
    pad("p99 ms", 8),
    pad("+p50", 7),
    pad("+p99", 7),
    pad("+TTFB", 7),
    pad("CPU µs/req", 10),
    pad("µs/chunk", 8),
    pad("×bare", 6),
    pad("RSS MB", 7),
  ].join(" ");
  console.log(header);
  console.log("-".repeat(header.length));
  for (const c of results.cells) {
    for (const [t, r] of Object.entries(c.targets)) {
      console.log(
        [
          pad(`${c.name} (${Math.round(c.body_bytes / 1024)} KB)`, 38, false),
          pad(t, 9, false),
          pad(Math.round(r.rps), 7),
          pad(r.p50_ms?.toFixed(3), 8),
          pad(r.p99_ms?.toFixed(3), 8),
          pad(r.added_p50_ms?.toFixed(2), 7),
          pad(r.added_p99_ms?.toFixed(2), 7),
          pad(r.added_ttfb_p50_ms?.toFixed(2), 7),
          pad(r.cpu_us_per_req, 10),
          pad(r.cpu_us_per_chunk?.toFixed(2), 8),
          pad(r.cpu_over_bare?.toFixed(2), 6),
          pad(t === "direct" ? "–" : r.peak_rss_mb, 7),
        ].join(" "),
      );
    }
  }
  if (results.soak) {
    const s = results.soak;
    console.log(
      `\nsoak ${s.seconds} s at ${s.connections} connections: ${s.rps} req/s, non2xx ${s.non2xx}; gateway RSS avg first third ${s.rss_mb_first_third_avg} MB, last third ${s.rss_mb_last_third_avg} MB, max ${s.rss_mb_max} MB`,
    );
  }
  console.log(`peak RSS over the whole run (MB): ${JSON.stringify(results.peak_rss_mb_whole_run)}`);
}
