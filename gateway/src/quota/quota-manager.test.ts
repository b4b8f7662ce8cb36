import { describe, expect, it } from "vitest";
import { BudgetPeriod, CounterKind, QuotaMetric, QuotaScope, createLogger } from "@tollgate/shared";
import type { KeyRecord } from "../auth/key-index.js";
import { EMPTY_POLICY } from "../auth/stored-key.js";
import { estimatePromptTokens, maxOutputTokens } from "./estimate.js";
import { NO_DEFAULTS, resolveLimits, windowOf, type LimitSpec } from "./limits.js";
import { Lease, Reservation } from "./lease.js";
import { QuotaManager } from "./quota-manager.js";
import type { QuotaRpc, Statement } from "./quota-rpc.js";
import { formatReset } from "./enforce.js";

const logger = createLogger({ name: "test", level: "silent" });

/**
 * The control plane's grant rule, in memory, for several managers at once:
 * held = min(want, capacity - others' consumed+held - own consumed).
 */
function fleetRpc(serverNow?: () => number) {
  const state = new Map<string, Map<string, { consumed: number; held: number }>>();
  let calls = 0;
  let down = false;
  const forGateway = (gw: string): QuotaRpc => ({
    async acquire(statements: Statement[]) {
      calls++;
      if (down) throw new Error("unavailable");
      const grants = statements.map((s) => {
        const id = `${s.counter}|${s.window}`;
        let rows = state.get(id);
        if (!rows) state.set(id, (rows = new Map()));
        let others = 0;
        for (const [g, r] of rows) if (g !== gw) others += r.consumed + r.held;
        const held = Math.max(0, Math.min(s.wantHeld, s.capacity - others - s.consumed));
        rows.set(gw, { consumed: s.consumed, held });
        return { counter: s.counter, window: s.window, held, fleetUsed: others + s.consumed + held };
      });
      const activeGateways = new Set([...state.values()].flatMap((m) => [...m.keys()])).size;
      return serverNow
        ? { grants, activeGateways, serverTime: { tookMs: serverNow(), sentMs: serverNow() } }
        : { grants, activeGateways };
    },
  });
  return { forGateway, calls: () => calls, setDown: (d: boolean) => (down = d) };
}

const spec = (capacity: number, metric: LimitSpec["metric"] = "rpm"): LimitSpec => ({
  counter: `key:ak_01m82rqbx8yf52wdjthym6nj5k:${metric}`,
  scope: "key",
  metric,
  capacity,
  kind: metric === "concurrency" ? CounterKind.GAUGE : CounterKind.WINDOW,
  period: metric === "concurrency" ? "live" : metric === "budget" ? "total" : "minute",
});

const clock = { now: () => 1_700_000_010_000 };

async function admitAll(m: QuotaManager, specs: LimitSpec[], n: number, tokens = 0) {
  const out = await Promise.all(Array.from({ length: n }, () => m.admit(specs, { tokens, costMicroUsd: 0 })));
  return {
    ok: out.filter((r) => r instanceof Reservation) as Reservation[],
    refused: out.filter((r) => !(r instanceof Reservation)),
  };
}

describe("QuotaManager", () => {
  it("admits exactly the capacity across gateways, asking the control plane once per burst per gateway, not per request", async () => {
    const fleet = fleetRpc();
    const managers = [0, 1, 2].map((i) => {
      const m = new QuotaManager(clock, logger);
      m.setRpc(fleet.forGateway(`gw-${i}`));
      return m;
    });
    const results = await Promise.all(managers.map((m) => admitAll(m, [spec(1000)], 500)));
    const admitted = results.reduce((a, r) => a + r.ok.length, 0);
    expect(admitted).toBeLessThanOrEqual(1000);
    expect(admitted).toBeGreaterThanOrEqual(1000 - 3 * 20); // at most each gateway's prefetch left unused
    expect(fleet.calls()).toBeLessThan(60);
  });

  it("admits from held units in memory, synchronously, once a lease covers them", async () => {
    const fleet = fleetRpc();
    const m = new QuotaManager(clock, logger, { prefetchFraction: 0.5 });
    m.setRpc(fleet.forGateway("gw"));
    expect(await m.admit([spec(100)], { tokens: 0, costMicroUsd: 0 })).toBeInstanceOf(Reservation);
    const calls = fleet.calls();
    const next = m.admit([spec(100)], { tokens: 0, costMicroUsd: 0 });
    expect(next).toBeInstanceOf(Reservation); // not a Promise: no await on the hot path
    expect(fleet.calls()).toBe(calls);
  });

  it("settles reservations to the real usage: a refund returns to the lease, an overrun is a debt the next grant pays", async () => {
    const fleet = fleetRpc();
    const m = new QuotaManager(clock, logger, { prefetchFraction: 0 });
    m.setRpc(fleet.forGateway("gw"));
    const tpm = spec(1000, "tpm");
    const r1 = (await m.admit([tpm], { tokens: 400, costMicroUsd: 0 })) as Reservation;
    m.settle(r1, { tokens: 100, costMicroUsd: null });
    const lease = r1.taken[0]!.lease;
    expect(lease.consumed).toBe(100);
    expect(lease.held).toBe(300);
    const r2 = (await m.admit([tpm], { tokens: 300, costMicroUsd: 0 })) as Reservation;
    m.settle(r2, { tokens: 800, costMicroUsd: null }); // used more than reserved
    expect(lease.consumed).toBe(900);
    expect(lease.held).toBe(-500);
    // 100 left in the fleet: a 200-token request is refused, a 100-token one fits after the debt is paid.
    expect(await m.admit([tpm], { tokens: 200, costMicroUsd: 0 })).toMatchObject({ refused: true });
    // Another gateway finds the fleet spent.
    const other = new QuotaManager(clock, logger);
    other.setRpc(fleet.forGateway("gw-2"));
    expect(await other.admit([tpm], { tokens: 100, costMicroUsd: 0 })).toMatchObject({ refused: true });
    // Unknown usage (an error, a client that left): the reservation counts as used.
    lease.reserved += 50;
    lease.held -= 50;
    const r3 = new Reservation([{ lease, metric: "tpm", amount: 50 }]);
    m.settle(r3, { tokens: null, costMicroUsd: null });
    expect(lease.consumed).toBe(950);
    expect(lease.reserved).toBe(0);
  });

  it("stops spending units it gives back before the control plane can hand them to another gateway", async () => {
    const fleet = fleetRpc();
    let t = clock.now();
    const moving = { now: () => t };
    const a = new QuotaManager(moving, logger, { prefetchFraction: 0.02 });
    let release: (() => void) | null = null;
    const rpcA = fleet.forGateway("a");
    a.setRpc({
      acquire: async (st) => {
        const res = await rpcA.acquire(st);
        if (st.every((x) => x.wantHeld === 0)) await new Promise<void>((r) => (release = r)); // hold the release call in flight
        return res;
      },
    });
    const first = (await a.admit([spec(100)], { tokens: 0, costMicroUsd: 0 })) as Reservation; // 1 used, 2 prefetched
    a.settle(first, { tokens: null, costMicroUsd: null });
    await a.maintain(); // states the settled use
    t += 11_000; // idle: upkeep gives the prefetched units back
    const upkeep = a.maintain();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(release).not.toBeNull();
    // While the release is in flight, the given-back units are no longer spendable from memory.
    expect(a.admit([spec(100)], { tokens: 0, costMicroUsd: 0 })).toBeInstanceOf(Promise);
    release!();
    await upkeep;
  });

  it("counts minutes by the control plane's clock: a gateway 40 s ahead does not spend the next minute's requests in this one", async () => {
    const m0 = 28_333_401;
    let t = m0 * 60_000 + 30_000; // the control plane's clock: 30 s into minute m0
    const fleet = fleetRpc(() => t);
    const a = new QuotaManager({ now: () => t }, logger);
    const b = new QuotaManager({ now: () => t + 40_000 }, logger); // its own clock says minute m0 + 1
    a.setRpc(fleet.forGateway("a"));
    b.setRpc(fleet.forGateway("b"));
    const rpm = [spec(100)];
    // Both gateways get 80 requests each in the control plane's minute m0.
    const [ra, rb] = await Promise.all([admitAll(a, rpm, 80), admitAll(b, rpm, 80)]);
    const inM0 = ra.ok.length + rb.ok.length;
    expect(inM0).toBeLessThanOrEqual(100);
    expect(inM0).toBeGreaterThanOrEqual(96); // less at most each gateway's prefetch
    expect(b.time.offsetMs).toBe(-40_000);
    for (const r of rb.ok) expect(r.taken[0]!.lease.window).toBe(`m:${m0}`);
    // Retry-After counts to the end of the fleet's minute, 30 s away, not the 50 s this host's clock says.
    const refused = [...ra.refused, ...rb.refused] as Array<{ retryAfterMs: number }>;
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect(r.retryAfterMs).toBe(30_000);
    for (const r of [...ra.ok, ...rb.ok])
      (r.taken[0]!.lease.spec === rpm[0] ? a : b).settle(r, { tokens: null, costMicroUsd: null });
    // Idle units go back, then the next minute starts for the whole fleet at once.
    t += 11_000;
    await Promise.all([a.maintain(), b.maintain()]);
    t = (m0 + 1) * 60_000 + 5_000;
    const [na, nb] = await Promise.all([admitAll(a, rpm, 80), admitAll(b, rpm, 80)]);
    const inM1 = na.ok.length + nb.ok.length;
    expect(inM1).toBeLessThanOrEqual(100);
    expect(inM1).toBeGreaterThanOrEqual(96);
  });

  it("states a settled overrun (a debt) at the next upkeep, so other gateways see it", async () => {
    const fleet = fleetRpc();
    const a = new QuotaManager(clock, logger, { prefetchFraction: 0 });
    const b = new QuotaManager(clock, logger, { prefetchFraction: 0 });
    a.setRpc(fleet.forGateway("a"));
    b.setRpc(fleet.forGateway("b"));
    const r = (await a.admit([spec(10_000, "tpm")], { tokens: 100, costMicroUsd: 0 })) as Reservation;
    a.settle(r, { tokens: 5_000, costMicroUsd: null });
    await a.maintain();
    expect(await b.admit([spec(10_000, "tpm")], { tokens: 5_500, costMicroUsd: 0 })).toMatchObject({ refused: true });
    expect(await b.admit([spec(10_000, "tpm")], { tokens: 4_900, costMicroUsd: 0 })).toBeInstanceOf(Reservation);
  });

  it("gives a concurrency slot back when the request ends", async () => {
    const fleet = fleetRpc();
    const m = new QuotaManager(clock, logger);
    m.setRpc(fleet.forGateway("gw"));
    const c = spec(2, "concurrency");
    const a = (await m.admit([c], { tokens: 0, costMicroUsd: 0 })) as Reservation;
    const b = (await m.admit([c], { tokens: 0, costMicroUsd: 0 })) as Reservation;
    expect(await m.admit([c], { tokens: 0, costMicroUsd: 0 })).toMatchObject({ refused: true, retryAfterMs: 1000 });
    m.settle(a, { tokens: null, costMicroUsd: null });
    expect(m.admit([c], { tokens: 0, costMicroUsd: 0 })).toBeInstanceOf(Reservation);
    m.settle(b, { tokens: null, costMicroUsd: null });
  });

  it("falls back to an even share of each limit among the gateways last seen when the control plane is unreachable", async () => {
    const fleet = fleetRpc();
    let t = clock.now();
    const moving = { now: () => t };
    const degraded: boolean[] = [];
    const a = new QuotaManager(moving, logger, { prefetchFraction: 0, onDegraded: (d) => degraded.push(d) });
    const b = new QuotaManager(moving, logger, { prefetchFraction: 0 });
    a.setRpc(fleet.forGateway("a"));
    b.setRpc(fleet.forGateway("b"));
    await admitAll(a, [spec(100)], 10);
    await admitAll(b, [spec(100)], 10);
    await admitAll(a, [spec(100)], 1); // a learns that two gateways are active
    fleet.setDown(true);
    const during = await admitAll(a, [spec(100)], 100);
    // 100 / 2 active gateways = 50 for a, which already used 11.
    expect(during.ok.length).toBe(39);
    expect(a.degraded).toBe(true);
    fleet.setDown(false);
    t += 1000; // past the short refusal cache
    await a.admit([spec(100)], { tokens: 0, costMicroUsd: 0 });
    expect(degraded).toEqual([true, false]);
  });

  it("lets a request without an output cap reserve at most a small limit's whole capacity", async () => {
    const m = new QuotaManager(clock, logger);
    m.setRpc(fleetRpc().forGateway("gw"));
    // 10 prompt tokens + the default 1,024 output tokens against a 1,000 tokens/min team limit.
    expect(await m.admit([spec(1000, "tpm")], { tokens: 1034, costMicroUsd: 0, outputCapped: true })).toMatchObject({
      refused: true,
    });
    const r = await m.admit([spec(1000, "tpm")], { tokens: 1034, costMicroUsd: 0, outputCapped: false });
    expect(r).toBeInstanceOf(Reservation);
    expect((r as Reservation).taken[0]!.amount).toBe(1000);
  });

  it("lets a request without an output cap on a second gateway reserve what the fleet has left, not refuse it", async () => {
    const fleet = fleetRpc();
    const [a, b] = ["gw-a", "gw-b"].map((g) => {
      const m = new QuotaManager(clock, logger);
      const rpc = fleet.forGateway(g);
      // Each answer takes 20 ms, as over a network: long enough to act while a call is in flight.
      m.setRpc({ acquire: async (st) => (await new Promise((r) => setTimeout(r, 20)), rpc.acquire(st)) });
      return m;
    });
    const uncapped = { tokens: 1034, costMicroUsd: 0, outputCapped: false };
    const first = await a!.admit([spec(1000, "tpm")], uncapped);
    expect(first).toBeInstanceOf(Reservation);
    a!.settle(first as Reservation, { tokens: 30, costMicroUsd: 0 });
    // The large refund goes back to the fleet at once (all but gw-a's prefetch).
    await new Promise((r) => setTimeout(r, 60));
    // gw-b has never seen the counter: it thinks 1,000 are left and asks; the fleet has 970.
    const second = await b!.admit([spec(1000, "tpm")], uncapped);
    expect(second).toBeInstanceOf(Reservation);
    expect((second as Reservation).taken[0]!.amount).toBeLessThanOrEqual(970);
    expect((second as Reservation).taken[0]!.amount).toBeGreaterThan(900);
    // That grant fell short of the default reservation, which is no shortage for such a request:
    // the next one right after (its refund still on the way back) is served too, not refused from the cache.
    b!.settle(second as Reservation, { tokens: 30, costMicroUsd: 0 });
    await new Promise((r) => setTimeout(r, 5)); // the refund is on its way back to the fleet
    const third = await b!.admit([spec(1000, "tpm")], uncapped);
    expect(third).toBeInstanceOf(Reservation);
    expect((third as Reservation).taken[0]!.amount).toBeGreaterThan(900);
  });

  it("keeps as much of a budget free as uncapped requests in flight have reserved", async () => {
    const m = new QuotaManager(clock, logger, { prefetchFraction: 0 });
    m.setRpc(fleetRpc().forGateway("gw"));
    const budget = spec(10_000, "budget");
    const uncapped = { tokens: 0, costMicroUsd: 3_000, outputCapped: false };
    const first = await m.admit([budget], uncapped);
    expect(first).toBeInstanceOf(Reservation);
    const second = await m.admit([budget], uncapped); // 7,000 left: 4,000 after it, more than the 3,000 in flight
    expect(second).toBeInstanceOf(Reservation);
    // 4,000 left: admitting a third would leave 1,000 for 6,000 reserved in flight: it waits its turn.
    expect(await m.admit([budget], uncapped)).toMatchObject({ refused: true, throttled: true, retryAfterMs: 1000 });
    // A capped one is not held back.
    expect(await m.admit([budget], { tokens: 0, costMicroUsd: 1_000, outputCapped: true })).toBeInstanceOf(Reservation);
    m.settle(first as Reservation, { tokens: null, costMicroUsd: 3_500 });
    m.settle(second as Reservation, { tokens: null, costMicroUsd: 3_500 });
    // 2,000 left, nothing uncapped in flight: the next one goes (reserving what is left).
    const last = await m.admit([budget], uncapped);
    expect(last).toBeInstanceOf(Reservation);
    expect((last as Reservation).taken[0]!.amount).toBe(2_000);
  });

  it("refuses what exceeds the whole capacity at once, naming when the window starts over", async () => {
    const m = new QuotaManager(clock, logger);
    m.setRpc(fleetRpc().forGateway("gw"));
    const r = await m.admit([spec(1000, "tpm")], { tokens: 5000, costMicroUsd: 0 });
    expect(r).toMatchObject({ refused: true });
    const { endsAtMs } = windowOf("minute", clock.now());
    expect((r as { retryAfterMs: number }).retryAfterMs).toBe(endsAtMs - clock.now());
  });
});

describe("limits", () => {
  const key = (policy: Partial<typeof EMPTY_POLICY>, teamId = "team_01m82rqbx8yf52wdjthym6nj5k") =>
    ({
      id: "ak_01m82rqbx8yf52wdjthym6nj5k",
      userId: "user_01m82rqbx8yf52wdjthym6nj5k",
      teamId,
      policy: { ...EMPTY_POLICY, ...policy },
    }) as unknown as KeyRecord;

  it("resolves the key's own limits, its owners', and the defaults where none is set", () => {
    const specs = resolveLimits(
      key({
        rpmLimit: 60,
        budgetUsd: 2.5,
        budgetPeriod: BudgetPeriod.MONTHLY,
        maxConcurrentRequests: 4,
        ownerLimits: [
          {
            scope: QuotaScope.USER,
            subjectId: "user_01m82rqbx8yf52wdjthym6nj5k",
            metric: QuotaMetric.TOKENS_PER_MINUTE,
            limit: 5000,
          },
        ],
      }),
      { ...NO_DEFAULTS, keyRpmLimit: 10, keyTpmLimit: 100, teamDailyTokenLimit: 1_000_000 },
    );
    expect(specs.map((s) => [s.counter.replace(/_[0-9a-z]{26}/, ""), s.capacity, s.period])).toEqual([
      ["key:ak:rpm", 60, "minute"],
      ["key:ak:tpm", 100, "minute"],
      ["key:ak:budget", 2_500_000, "month"],
      ["key:ak:concurrency", 4, "live"],
      ["user:user:tpm", 5000, "minute"],
      ["team:team:tpd", 1_000_000, "day"],
    ]);
    expect(resolveLimits(key({}, ""), NO_DEFAULTS)).toEqual([]);
    // DISABLE_AUTH and AUTH_BYPASS_PATHS stand-ins: no owner, no limits, even with defaults.
    const standIn = { ...key({}, ""), id: "dev-no-auth", userId: "" } as KeyRecord;
    expect(resolveLimits(standIn, { ...NO_DEFAULTS, keyRpmLimit: 10 })).toEqual([]);
  });

  it("names windows by UTC minute, day and month", () => {
    const t = Date.UTC(2026, 10, 30, 23, 59, 30);
    expect(windowOf("minute", t)).toEqual({
      window: `m:${Math.floor(t / 60_000)}`,
      endsAtMs: Math.floor(t / 60_000) * 60_000 + 60_000,
    });
    expect(windowOf("day", t)).toEqual({ window: "d:2026-11-30", endsAtMs: Date.UTC(2026, 11, 1) });
    expect(windowOf("month", t)).toEqual({ window: "mo:2026-11", endsAtMs: Date.UTC(2026, 11, 1) });
  });

  it("estimates prompt tokens from every API's body and reads the output cap", () => {
    const chat = estimatePromptTokens({ messages: [{ role: "user", content: "hello world ".repeat(50) }] });
    expect(chat).toBeGreaterThan(50);
    expect(chat).toBeLessThan(200);
    expect(
      estimatePromptTokens({
        system: "be brief",
        messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }],
      }),
    ).toBeGreaterThan(2);
    expect(estimatePromptTokens({ input: "embed me please" })).toBeGreaterThan(2);
    expect(maxOutputTokens({ max_tokens: 64 })).toBe(64);
    expect(maxOutputTokens({ max_completion_tokens: 32, max_tokens: 64 })).toBe(32);
    expect(maxOutputTokens({})).toBeNull();
  });

  it("formats reset times as OpenAI does", () => {
    expect(formatReset(20)).toBe("20ms");
    expect(formatReset(1500)).toBe("2s");
    expect(formatReset(360_000)).toBe("6m0s");
  });

  it("caches a lease's header texts without changing them: reset per second, remaining per value", () => {
    const endsAt = Date.UTC(2026, 11, 3, 16, 1, 0, 0);
    const lease = new Lease(spec(60), "w", endsAt);
    // Every millisecond of the last 3.5 s of the window, and a few far from its end, in time order.
    for (const left of [3_600_000, 360_000, 61_001, 60_000, 59_999])
      expect(lease.resetText(endsAt - left)).toBe(formatReset(left));
    for (let left = 3500; left >= -5; left--) expect(lease.resetText(endsAt - left)).toBe(formatReset(left));
    expect(lease.resetInstantText()).toBe("2026-12-03T16:01:00Z");
    for (const used of [0, 1, 1, 7, 60, 61]) {
      lease.consumed = used;
      expect(lease.remainingText()).toBe(String(lease.remaining()));
    }
  });
});
