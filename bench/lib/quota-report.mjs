// Fleet quota bench: the summary tables.
import { pct } from "./quota-settings.mjs";

// ---------------------------------------------------------------- report

function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(" | ")} |`;
  return [line(header), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)].join("\n");
}

export function report(results) {
  const out = [];
  if (results.rpm.length) {
    out.push(
      table(
        [
          "N",
          "L (rpm)",
          "offered",
          "accepted",
          "per gateway",
          "overshoot",
          "under-use",
          "bound: ≤ L, under-use ≤ N×prefetch",
          "first 429",
          "within 2 %",
          "degraded",
        ],
        results.rpm.map((r) => [
          r.n,
          r.limit,
          r.sent,
          r.accepted,
          r.per_gateway.map((g) => g.accepted).join(" / "),
          pct(r.overshoot),
          pct(r.under_use),
          `${r.within_limit ? "≤ L" : "OVER L"}, ${r.limit - r.accepted} ≤ ${r.under_use_bound}: ${r.within_under_use_bound ? "yes" : "NO"}`,
          `${r.first_refusal_s} s`,
          r.within_2pct ? "yes" : "NO",
          r.degraded_log_lines_during,
        ]),
      ),
    );
  }
  if (results.budget.length) {
    out.push("");
    out.push(
      table(
        [
          "N",
          "requests",
          "B",
          "spent (200s)",
          "CP spend_usd",
          "overshoot",
          "max excess/req",
          "stated N×max",
          "peak in flight",
          "in-flight×max",
          "within 2 %",
          "degraded",
        ],
        results.budget.map((r) => [
          r.n,
          r.run > 1 ? `${r.variant} #${r.run}` : r.variant,
          `$${r.budget_usd}`,
          `$${r.spent_usd.toFixed(4)} (${r.accepted} × 200)`,
          r.cp ? `$${r.cp.spend_usd.toFixed(4)}${r.cp.matches_responses ? " (=)" : " (≠)"}` : "–",
          pct(r.overshoot),
          `$${Math.max(0, r.max_excess_usd).toFixed(4)}`,
          `$${r.stated_bound_usd.toFixed(4)} ${r.within_stated_bound ? "holds" : "EXCEEDED"}`,
          r.peak_in_flight,
          `$${r.concurrency_bound_usd.toFixed(4)} ${r.within_concurrency_bound ? "holds" : "EXCEEDED"}`,
          r.within_2pct ? "yes" : "NO",
          r.degraded_log_lines_during,
        ]),
      ),
    );
  }
  return out.join("\n");
}
