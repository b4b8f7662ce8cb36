// Fleet quota bench, part 2: requests per minute overshoot.
import { setTimeout as sleep } from "node:timers/promises";
import { admin } from "./services.mjs";
import { chat, prompt, targetOf } from "./quota-client.mjs";
import { MODEL, pct, PREFETCH_FRACTION, progress, round1, round6, say, settings } from "./quota-settings.mjs";

// ---------------------------------------------------------------- part 2: requests per minute

export async function rpmWindow(ctx, n) {
  const fleet = ctx.gateways.slice(0, n);
  const keys = [];
  for (const limit of settings.rpmLimits) {
    const key = await admin(ctx.cp, "POST", "/internal/api-keys?wait_for_gateways=10s", {
      name: `quota-bench-rpm-n${n}-${limit}`,
      user_id: ctx.userId,
      rpm_limit: limit,
    });
    keys.push({
      limit,
      key,
      rate: (settings.offered * limit) / 60, // per second
      sent: 0,
      dropped: 0,
      inFlight: 0,
      peakInFlight: 0,
      perGw: fleet.map(() => ({ sent: 0, ok: 0, refused: 0, other: 0 })),
      other: {},
      ok: 0,
      refused: 0,
      firstRefusalMs: null,
      lastOkMs: null,
      okPerSecond: new Array(60).fill(0),
    });
  }
  // The next whole UTC minute (or this one, if it started less than 300 ms ago).
  const now = Date.now();
  const minuteStart = now % 60_000 < 300 ? now - (now % 60_000) : now - (now % 60_000) + 60_000;
  const startAt = minuteStart + 300;
  const stopAt = minuteStart + 58_500;
  const label = `rpm N=${n}`;
  let degradedBefore;
  const waitMs = startAt - Date.now();
  say(
    `[${label}] waiting ${(waitMs / 1000).toFixed(1)} s for the minute ${new Date(minuteStart).toISOString().slice(11, 16)} UTC…`,
  );
  while (Date.now() < startAt) {
    progress(`[${label}] window starts in ${((startAt - Date.now()) / 1000).toFixed(1)} s`);
    await sleep(Math.min(250, Math.max(1, startAt - Date.now())));
  }
  degradedBefore = ctx.degraded();
  const pending = new Set();
  const send = (k) => {
    if (k.inFlight >= settings.rpmMaxInFlight) {
      k.dropped++;
      return;
    }
    const i = k.sent++;
    const g = targetOf(i, n, settings.skew);
    k.perGw[g].sent++;
    k.inFlight++;
    k.peakInFlight = Math.max(k.peakInFlight, k.inFlight);
    const p = chat(fleet[g], k.key.key, { model: MODEL, messages: [{ role: "user", content: prompt(i) }] }, false).then(
      (r) => {
        k.inFlight--;
        pending.delete(p);
        const at = Date.now() - minuteStart;
        const s = k.perGw[g];
        if (r.status === 200) {
          s.ok++;
          k.ok++;
          k.lastOkMs = Math.max(k.lastOkMs ?? 0, at);
          k.okPerSecond[Math.min(59, Math.floor(at / 1000))]++;
        } else if (r.status === 429 && r.json?.error?.code === "rate_limit_exceeded") {
          s.refused++;
          k.refused++;
          k.firstRefusalMs ??= at;
        } else {
          s.other++;
          const key = `${r.status} ${r.json?.error?.code ?? r.json?.error ?? ""}`.trim();
          k.other[key] = (k.other[key] ?? 0) + 1;
        }
        k.lastDoneMs = Math.max(k.lastDoneMs ?? 0, at);
      },
    );
    pending.add(p);
  };
  const t0 = Date.now();
  let lastProgress = 0;
  for (;;) {
    const t = Date.now();
    if (t >= stopAt) break;
    const elapsedS = (t - t0) / 1000;
    for (const k of keys) {
      const due = Math.floor(k.rate * elapsedS);
      while (k.sent + k.dropped < due) send(k);
    }
    if (t - lastProgress >= 250) {
      lastProgress = t;
      progress(
        `[${label}] ${((t - minuteStart) / 1000).toFixed(1)} s of the minute  ` +
          keys
            .map((k) => `L=${k.limit}: 200 ${k.ok}/${k.limit} 429 ${k.refused} in flight ${k.inFlight}`)
            .join("  |  "),
      );
    }
    await sleep(100);
  }
  await Promise.all([...pending]);
  const endedAt = Date.now();
  if (endedAt >= minuteStart + 60_000)
    ctx.errors.push(`${label}: the last answer came ${endedAt - minuteStart - 60_000} ms into the next minute`);
  const window = `m:${Math.floor(minuteStart / 60_000)}`;
  const degradedDuring = ctx.degraded() - degradedBefore;
  const out = keys.map((k) => {
    const overshoot = (k.ok - k.limit) / k.limit;
    const prefetch = Math.floor(k.limit * PREFETCH_FRACTION);
    return {
      n,
      limit: k.limit,
      window,
      minute_utc: new Date(minuteStart).toISOString(),
      key_id: k.key.id,
      offered_per_minute: Math.round(k.rate * 60),
      sent: k.sent,
      dropped_over_in_flight_cap: k.dropped,
      peak_in_flight: k.peakInFlight,
      accepted: k.ok,
      refused: k.refused,
      other_statuses: k.other,
      overshoot: round6(overshoot),
      under_use: round6(Math.max(0, -overshoot)),
      // Stated bounds: accepted ≤ L; L − accepted ≤ N × prefetch (2 % of L).
      under_use_bound: n * prefetch,
      within_limit: k.ok <= k.limit,
      within_under_use_bound: k.limit - k.ok <= n * prefetch,
      within_2pct: Math.abs(overshoot) <= 0.02,
      first_refusal_s: k.firstRefusalMs === null ? null : round1(k.firstRefusalMs / 1000),
      last_200_s: k.lastOkMs === null ? null : round1(k.lastOkMs / 1000),
      last_answer_s: k.lastDoneMs === undefined ? null : round1(k.lastDoneMs / 1000),
      accepted_per_second: k.okPerSecond,
      per_gateway: k.perGw.map((s, g) => ({
        gateway: g + 1,
        sent: s.sent,
        accepted: s.ok,
        refused: s.refused,
        other: s.other,
      })),
      degraded_log_lines_during: degradedDuring,
    };
  });
  for (const r of out) {
    say(
      `[${label}] L=${r.limit}: ${r.accepted} accepted of ${r.sent} sent (overshoot ${pct(r.overshoot)}, under-use ${pct(r.under_use)}); ` +
        `first 429 at ${r.first_refusal_s} s, last 200 at ${r.last_200_s} s; per gateway ${r.per_gateway.map((g) => g.accepted).join("/")}`,
    );
  }
  return out;
}
