import { useState } from "react";
import { api, qs, type UsageRow } from "../api.js";
import { EmptyState, ErrorBanner, PageSection, Spinner, useLoad } from "../ui.js";

type Metric = "requests" | "tokens" | "cost_usd";
const METRICS: Array<[Metric, string]> = [
  ["requests", "Requests"],
  ["tokens", "Tokens"],
  ["cost_usd", "Cost (USD)"],
];

const value = (r: UsageRow, m: Metric) => (m === "tokens" ? r.input_tokens + r.output_tokens : r[m]);
const fmt = (v: number, m: Metric) => (m === "cost_usd" ? `$${v.toFixed(v < 1 ? 4 : 2)}` : v.toLocaleString());

/** A bar chart in plain SVG: a few dozen bars need no charting library. */
function BarChart(props: { rows: Array<{ label: string; value: number }>; metric: Metric; title: string }) {
  const max = Math.max(1, ...props.rows.map((r) => r.value));
  const w = 720;
  const h = 200;
  const bw = w / Math.max(1, props.rows.length);
  return (
    <figure className="chart">
      <svg
        viewBox={`0 0 ${w} ${h + 20}`}
        role="img"
        aria-label={`${props.title}: ${props.rows.map((r) => `${r.label} ${fmt(r.value, props.metric)}`).join(", ")}`}
      >
        {props.rows.map((r, i) => {
          const bh = (r.value / max) * h;
          return (
            <g key={r.label}>
              <rect x={i * bw + 2} y={h - bh} width={Math.max(1, bw - 4)} height={bh} className="bar">
                <title>{`${r.label}: ${fmt(r.value, props.metric)}`}</title>
              </rect>
              {(props.rows.length <= 12 || i % Math.ceil(props.rows.length / 10) === 0) && (
                <text
                  x={i === 0 ? i * bw + 2 : i * bw + bw / 2}
                  y={h + 14}
                  textAnchor={i === 0 ? "start" : "middle"}
                  className="axis"
                >
                  {/^\d{4}-/.test(r.label) ? r.label.slice(5) : r.label}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <figcaption>
        {props.title} (max {fmt(max, props.metric)})
      </figcaption>
    </figure>
  );
}

function HBars(props: { rows: Array<{ label: string; value: number }>; metric: Metric }) {
  const max = Math.max(1, ...props.rows.map((r) => r.value));
  return (
    <ul className="hbars">
      {props.rows.map((r) => (
        <li key={r.label}>
          <span className="hlabel">{r.label}</span>
          <span className="htrack" aria-hidden="true">
            <span className="hfill" style={{ width: `${(r.value / max) * 100}%` }} />
          </span>
          <span className="num">{fmt(r.value, props.metric)}</span>
        </li>
      ))}
    </ul>
  );
}

export function UsagePage() {
  const [metric, setMetric] = useState<Metric>("requests");
  const [groupBy, setGroupBy] = useState<"key" | "user" | "team">("key");
  const [days, setDays] = useState(30);
  const from = new Date(Date.now() - (days - 1) * 86_400_000).toISOString().slice(0, 10);
  const daily = useLoad(
    () => api<{ data: UsageRow[] }>("GET", `/internal/usage${qs({ group_by: "day", from })}`),
    [from],
  );
  const grouped = useLoad(
    () => api<{ data: UsageRow[] }>("GET", `/internal/usage${qs({ group_by: groupBy, from, limit: 20 })}`),
    [groupBy, from],
  );
  const label = (r: UsageRow) => {
    const id = r.key_id ?? r.user_id ?? r.team_id ?? null;
    if (!id) return "No team";
    return r.name ?? `deleted ${groupBy} (${id})`;
  };
  const dayRows = fillDays(daily.data?.data ?? [], from, days).map((r) => ({ label: r.day!, value: value(r, metric) }));
  const total = (daily.data?.data ?? []).reduce((s, r) => s + value(r, metric), 0);
  return (
    <PageSection
      crumb="Insights"
      title="Usage"
      intro="Requests, tokens and cost as the gateways reported them, per UTC day."
    >
      <div className="toolbar">
        <div role="group" aria-label="Metric" className="segmented">
          {METRICS.map(([m, l]) => (
            <button
              key={m}
              type="button"
              aria-pressed={metric === m}
              className={metric === m ? "active" : ""}
              onClick={() => setMetric(m)}
            >
              {l}
            </button>
          ))}
        </div>
        <label htmlFor="usage-range">Range</label>
        <select id="usage-range" value={days} onChange={(e) => setDays(Number(e.target.value))}>
          <option value={7}>Last 7 days</option>
          <option value={30}>Last 30 days</option>
          <option value={90}>Last 90 days</option>
        </select>
        <label htmlFor="usage-group">Break down by</label>
        <select
          id="usage-group"
          value={groupBy}
          onChange={(e) => setGroupBy(e.target.value as "key" | "user" | "team")}
        >
          <option value="key">Key</option>
          <option value="user">User</option>
          <option value="team">Team</option>
        </select>
      </div>
      <ErrorBanner error={daily.error ?? grouped.error} />
      {daily.loading && !daily.data ? (
        <Spinner />
      ) : (daily.data?.data.length ?? 0) === 0 ? (
        <EmptyState title="No usage in this range">
          Send a request through a gateway with one of your keys; usage appears here within a few seconds of the gateway
          reporting it.
        </EmptyState>
      ) : (
        <>
          <p className="stat">
            Total: <strong>{fmt(total, metric)}</strong>
          </p>
          <BarChart rows={dayRows} metric={metric} title={`${METRICS.find((m) => m[0] === metric)![1]} per day`} />
          <h2>By {groupBy}</h2>
          <HBars
            rows={(grouped.data?.data ?? []).map((r) => ({ label: label(r), value: value(r, metric) }))}
            metric={metric}
          />
        </>
      )}
    </PageSection>
  );
}

/** One row per day of the range, zeros where nothing was reported, so the chart's time axis is even. */
function fillDays(rows: UsageRow[], from: string, days: number): UsageRow[] {
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const out: UsageRow[] = [];
  for (let i = 0; i < days; i++) {
    const day = new Date(Date.parse(`${from}T00:00:00Z`) + i * 86_400_000).toISOString().slice(0, 10);
    out.push(byDay.get(day) ?? { day, requests: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0 });
  }
  return out;
}
