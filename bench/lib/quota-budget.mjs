// Fleet quota bench, part 1: budget overshoot.
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { admin } from "./services.mjs";
import { chat, prompt, targetOf } from "./quota-client.mjs";
import { state } from "./quota-runtime.mjs";
import {
  DEFAULT_RESERVED_OUTPUT_TOKENS,
  MODEL,
  pct,
  progress,
  round1,
  round6,
  say,
  settings,
  usd,
} from "./quota-settings.mjs";

// ---------------------------------------------------------------- part 1: budget

/** micro-USD, the way the gateway prices (pricing/price-index.ts): reserve rounds up, actual rounds. */
const reserveMicro = (promptTokens, outTokens) =>
  Math.ceil(promptTokens * settings.inputPrice + outTokens * settings.outputPrice - 1e-9);
const actualMicro = (u) =>
  Math.round((u.prompt_tokens ?? 0) * settings.inputPrice + (u.completion_tokens ?? 0) * settings.outputPrice);

export async function budgetRun(ctx, n, variant, run = 1) {
  const label = `budget N=${n} ${variant}${run > 1 ? ` #${run}` : ""}`;
  const degradedBefore = ctx.degraded();
  const fleet = ctx.gateways.slice(0, n);
  const budgetUsd = settings.budgetUsd;
  const key = await admin(ctx.cp, "POST", "/internal/api-keys?wait_for_gateways=10s", {
    name: `quota-bench-budget-n${n}-${variant}-${run}`,
    user_id: ctx.userId,
    budget_usd: budgetUsd,
  });
  const bodyOf = (i) => ({
    model: MODEL,
    messages: [{ role: "user", content: prompt(i) }],
    ...(variant === "capped" ? { max_tokens: settings.cappedMaxTokens } : {}),
  });
  const perGw = fleet.map(() => ({ sent: 0, ok: 0, refused: 0, other: 0, spentMicro: 0, refusedAt: null }));
  const other = {};
  let spentMicro = 0;
  let ok = 0;
  let next = 0;
  let inFlight = 0;
  let peakInFlight = 0;
  let maxExcess = -Infinity;
  let maxExcessTokens = -Infinity;
  let sumExcessPositive = 0;
  let maxReserved = 0;
  let stop = false;
  const t0 = performance.now();
  const budgetMicro = Math.round(budgetUsd * 1e6);
  const record = (g, i, r) => {
    const s = perGw[g];
    if (r.status === 200 && r.json?.usage) {
      const body = bodyOf(i);
      const est = state.estimate(body);
      const reservedOut = variant === "capped" ? settings.cappedMaxTokens : DEFAULT_RESERVED_OUTPUT_TOKENS;
      const reserved = reserveMicro(est, reservedOut);
      const actual = actualMicro(r.json.usage);
      s.ok++;
      ok++;
      s.spentMicro += actual;
      spentMicro += actual;
      maxReserved = Math.max(maxReserved, reserved);
      if (actual - reserved > maxExcess) {
        maxExcess = actual - reserved;
        maxExcessTokens = r.json.usage.total_tokens - (est + reservedOut);
      }
      sumExcessPositive += Math.max(0, actual - reserved);
    } else if (
      r.status === 429 &&
      (r.json?.error?.code === "insufficient_quota" || r.json?.error?.code === "budget_exceeded")
    ) {
      s.refused++;
      s.refusedAt ??= round1(r.t1 - t0);
    } else {
      s.other++;
      const k = `${r.status} ${r.json?.error?.code ?? r.json?.error ?? ""}`.trim();
      other[k] = (other[k] ?? 0) + 1;
    }
  };
  const timer = setInterval(() => {
    progress(
      `[${label}] ${((performance.now() - t0) / 1000).toFixed(1)} s  spent ${usd(spentMicro)} of $${budgetUsd} (${pct(spentMicro / budgetMicro)})  ` +
        `200s ${ok}  in flight ${inFlight}  refused per gateway ${perGw.map((s) => s.refused).join("/")}`,
    );
  }, 250);
  const deadline = t0 + 120_000;
  const worker = async () => {
    while (!stop) {
      if (performance.now() > deadline) {
        stop = true;
        ctx.errors.push(`${label}: not every gateway refused within 120 s`);
        break;
      }
      const i = next++;
      const g = targetOf(i, n, settings.skew);
      perGw[g].sent++;
      inFlight++;
      peakInFlight = Math.max(peakInFlight, inFlight);
      const r = await chat(fleet[g], key.key, bodyOf(i), true);
      inFlight--;
      record(g, i, r);
      // Near the limit, uncapped requests are throttled (429 rate_limit_exceeded, Retry-After: 1): back off a little, as a client would.
      if (r.status === 429 && r.json?.error?.code === "rate_limit_exceeded")
        await new Promise((res) => setTimeout(res, 100));
      if (perGw.every((s) => s.refused > 0)) stop = true;
    }
  };
  await Promise.all(Array.from({ length: settings.connections }, worker));
  const loadS = (performance.now() - t0) / 1000;
  // Afterwards: anything left anywhere in the fleet is still served. Probe each gateway a few times.
  await sleep(1_500);
  const probes = [];
  for (let g = 0; g < n; g++) {
    for (let p = 0; p < 3; p++) {
      const i = next++;
      const r = await chat(fleet[g], key.key, bodyOf(i), true);
      record(g, i, r);
      probes.push({ gateway: g + 1, status: r.status });
    }
  }
  clearInterval(timer);
  const overshoot = (spentMicro - budgetMicro) / budgetMicro;
  const result = {
    n,
    variant,
    run,
    key_id: key.id,
    budget_usd: budgetUsd,
    request:
      variant === "capped"
        ? { max_tokens: settings.cappedMaxTokens }
        : {
            max_tokens: null,
            reserved_output_tokens: DEFAULT_RESERVED_OUTPUT_TOKENS,
            completion_tokens: settings.uncappedCompletion,
          },
    load_s: round1(loadS),
    connections: settings.connections,
    peak_in_flight: peakInFlight,
    requests: next,
    accepted: ok,
    spent_usd: round6(spentMicro / 1e6),
    overshoot: round6(overshoot),
    under_use: round6(Math.max(0, -overshoot)),
    max_reserved_usd: round6(maxReserved / 1e6),
    max_excess_usd: round6(maxExcess / 1e6),
    max_excess_tokens: maxExcessTokens,
    sum_positive_excess_usd: round6(sumExcessPositive / 1e6),
    // The stated bound, and the one that holds with concurrent requests.
    stated_bound_usd: round6((n * Math.max(0, maxExcess)) / 1e6),
    concurrency_bound_usd: round6((peakInFlight * Math.max(0, maxExcess)) / 1e6),
    within_stated_bound: spentMicro - budgetMicro <= n * Math.max(0, maxExcess),
    within_concurrency_bound: spentMicro - budgetMicro <= peakInFlight * Math.max(0, maxExcess),
    within_2pct: Math.abs(overshoot) <= 0.02,
    per_gateway: perGw.map((s, g) => ({
      gateway: g + 1,
      sent: s.sent,
      accepted: s.ok,
      refused: s.refused,
      other: s.other,
      spent_usd: round6(s.spentMicro / 1e6),
      first_refusal_s: s.refusedAt === null ? null : round1(s.refusedAt / 1000),
    })),
    other_statuses: other,
    probes_after_stop: probes,
    // "quota service unreachable" lines the gateways logged during this run (0: every grant came from the control plane).
    degraded_log_lines_during: ctx.degraded() - degradedBefore,
    cp: null,
  };
  say(
    `[${label}] spent ${usd(spentMicro)} of $${budgetUsd}: overshoot ${pct(overshoot)} in ${round1(loadS)} s, ${ok} × 200, peak ${peakInFlight} in flight, ` +
      `max excess/request ${usd(Math.max(0, maxExcess))}; probes after stop: ${probes.map((p) => p.status).join(" ")}`,
  );
  return result;
}

/** Waits until the control plane's spend_usd and requests of every key stop moving (reports every 1 s). */
export async function controlPlaneView(ctx, runs) {
  const deadline = performance.now() + 30_000;
  let last = null;
  let stableSince = performance.now();
  for (;;) {
    const views = [];
    for (const r of runs) {
      const k = await admin(ctx.cp, "GET", `/internal/api-keys/${r.key_id}`);
      views.push({ spend_usd: k.spend_usd, requests: k.requests });
    }
    const text = JSON.stringify(views);
    if (text !== last) {
      last = text;
      stableSince = performance.now();
    } else if (performance.now() - stableSince >= 3_000) {
      runs.forEach((r, i) => {
        r.cp = {
          spend_usd: round6(views[i].spend_usd),
          requests: views[i].requests,
          overshoot: round6((views[i].spend_usd - r.budget_usd) / r.budget_usd),
          matches_responses: Math.abs(views[i].spend_usd - r.spent_usd) < 1e-6,
        };
      });
      return;
    }
    if (performance.now() > deadline) {
      ctx.errors.push("control-plane spend did not settle within 30 s");
      return;
    }
    await sleep(500);
  }
}
