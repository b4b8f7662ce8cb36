import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import {
  AcquireResponseSchema,
  CounterKind,
  type AcquireRequest,
  type AcquireResponse,
  type CounterStatement,
} from "@tollgate/shared";
import { sql } from "kysely";
import type { AppContext } from "../context.js";
import type { Db } from "../db/database.js";
import { authenticateGateway } from "./gateway-auth.js";
import { checkCount, gatewayOfOrg, invalid } from "./gateway-check.js";

const MAX_COUNTERS = 200;
const COUNTER_RE = /^(key|user|team):[a-z]+_[0-9a-z]{26}:[a-z_]{2,20}$/;
const WINDOW_RE = /^(m:\d{1,12}|d:\d{4}-\d{2}-\d{2}|mo:\d{4}-\d{2}|total|live)$/;

function validate(s: CounterStatement, i: number): void {
  const at = `counters[${i}]`;
  if (!COUNTER_RE.test(s.counter)) throw invalid(`${at}.counter`, "must look like key:ak_…:rpm");
  if (!WINDOW_RE.test(s.window))
    throw invalid(`${at}.window`, "must be m:<minute>, d:YYYY-MM-DD, mo:YYYY-MM, total or live");
  if (s.kind !== CounterKind.WINDOW && s.kind !== CounterKind.GAUGE)
    throw invalid(`${at}.kind`, "must be WINDOW or GAUGE");
  for (const f of ["capacity", "consumed", "wantHeld", "windowEndsAtMs"] as const) {
    checkCount(s[f], `${at}.${f}`);
  }
}

/**
 * Grants leases: for each counter, what the other gateways consumed or still
 * hold (unexpired) is subtracted from the capacity; the caller may hold up to
 * the rest. The counter row's lock serializes gateways asking at once, so the
 * sum of grants never exceeds the capacity.
 */
export async function acquire(app: AppContext, req: AcquireRequest, ctx: HandlerContext): Promise<AcquireResponse> {
  const principal = await authenticateGateway(app, ctx);
  await gatewayOfOrg(app, req.gatewayId, principal.orgId);
  if (req.counters.length > MAX_COUNTERS) throw invalid("counters", `at most ${MAX_COUNTERS} per call`);
  req.counters.forEach(validate);
  // A fixed lock order: two gateways asking for the same counters never deadlock.
  const statements = [...req.counters].sort((a, b) =>
    a.counter === b.counter ? (a.window < b.window ? -1 : 1) : a.counter < b.counter ? -1 : 1,
  );
  const now = app.now();
  const heldUntil = new Date(now.getTime() + app.config.quota.leaseTtlMs);
  const started = performance.now();
  const { grants, gateways } = await app.db.transaction().execute(async (trx) => {
    const grants = [];
    const gateways = new Set<string>([req.gatewayId]);
    for (const s of statements) {
      const g = await grant(trx, principal.orgId, req.gatewayId, s, now, heldUntil);
      for (const id of g.others) gateways.add(id);
      grants.push({ counter: s.counter, window: s.window, held: BigInt(g.held), fleetUsed: BigInt(g.fleetUsed) });
    }
    return { grants, gateways };
  });
  app.metrics.quotaAcquire(statements.length, (performance.now() - started) / 1000);
  // The fallback divides each limit by this: count every connected gateway of the
  // organization too, not only those that used these counters.
  const activeGateways = Math.max(gateways.size, await connectedGateways(app, principal.orgId));
  // Taken last: the gateway leaves the time between the two clocks out of the round trip.
  const serverTimeMs = BigInt(app.now().getTime());
  return create(AcquireResponseSchema, { grants, activeGateways, serverTime: timestampFromDate(now), serverTimeMs });
}

const connectedCache = new WeakMap<AppContext, Map<string, { n: number; atMs: number }>>();

/** Connected gateways of an organization, cached for 5 s. */
async function connectedGateways(app: AppContext, orgId: string): Promise<number> {
  let cache = connectedCache.get(app);
  if (!cache) connectedCache.set(app, (cache = new Map()));
  const hit = cache.get(orgId);
  if (hit && Date.now() - hit.atMs < 5_000) return hit.n;
  const row = await app.db
    .selectFrom("gateways")
    .select(sql<string>`count(*)`.as("n"))
    .where("org_id", "=", orgId)
    .where("connected", "=", true)
    .executeTakeFirstOrThrow();
  const n = Number(row.n);
  cache.set(orgId, { n, atMs: Date.now() });
  return n;
}

async function grant(
  trx: Db,
  orgId: string,
  gatewayId: string,
  s: CounterStatement,
  now: Date,
  heldUntil: Date,
): Promise<{ held: number; fleetUsed: number; others: string[] }> {
  const capacity = Number(s.capacity);
  let consumed = Number(s.consumed);
  const kind = s.kind === CounterKind.GAUGE ? "gauge" : "window";
  // The upsert takes the counter row's lock until commit.
  await trx
    .insertInto("quota_counters")
    .values({
      org_id: orgId,
      counter: s.counter,
      window_key: s.window,
      kind,
      capacity,
      window_ends_at: s.windowEndsAtMs > 0n ? new Date(Number(s.windowEndsAtMs)) : null,
    })
    .onConflict((oc) => oc.columns(["org_id", "counter", "window_key"]).doUpdateSet({ capacity }))
    .execute();
  // Held units of a gateway that stopped renewing them return to the fleet; so
  // do a gauge's units in use (a gateway that died has no requests in flight).
  const live = sql<boolean>`held_until > ${now}`;
  const rows = await trx
    .selectFrom("quota_holdings")
    .select([
      "gateway_id",
      "consumed",
      kind === "gauge"
        ? sql<string>`case when ${live} then consumed + held else 0 end`.as("used")
        : sql<string>`consumed + case when ${live} then held else 0 end`.as("used"),
    ])
    .where("org_id", "=", orgId)
    .where("counter", "=", s.counter)
    .where("window_key", "=", s.window)
    .execute();
  let othersUsed = 0;
  let recorded = 0;
  const active: string[] = [];
  for (const o of rows) {
    if (o.gateway_id === gatewayId) {
      recorded = Number(o.consumed);
      continue;
    }
    const used = Number(o.used);
    othersUsed += used;
    if (used > 0) active.push(o.gateway_id);
  }
  // Settled use only grows in a window: a gateway that restarted with less (a
  // crash, a recreated cache) must not make the fleet forget what it served.
  if (kind === "window") consumed = Math.max(consumed, recorded);
  const held = Math.max(0, Math.min(Number(s.wantHeld), capacity - othersUsed - consumed));
  await trx
    .insertInto("quota_holdings")
    .values({
      org_id: orgId,
      counter: s.counter,
      window_key: s.window,
      gateway_id: gatewayId,
      consumed,
      held,
      held_until: heldUntil,
    })
    .onConflict((oc) =>
      oc
        .columns(["org_id", "counter", "window_key", "gateway_id"])
        .doUpdateSet({ consumed, held, held_until: heldUntil }),
    )
    .execute();
  return { held, fleetUsed: othersUsed + consumed + held, others: active };
}
