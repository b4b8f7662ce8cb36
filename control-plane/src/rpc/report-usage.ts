import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import {
  ReportUsageResponseSchema,
  type ReportUsageRequest,
  type ReportUsageResponse,
  type UsageRecord,
} from "@tollgate/shared";
import { sql } from "kysely";
import type { AppContext } from "../context.js";
import type { Db } from "../db/database.js";
import { authenticateGateway } from "./gateway-auth.js";
import { checkBudgetAlerts } from "../quota/alerts.js";
import { checkCount, gatewayOfOrg, invalid } from "./gateway-check.js";

const MAX_REPORTS = 500;
const MAX_RECORDS = 20_000;
const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;
const KEY_RE = /^ak_[0-9a-z]{26}$/;
const USER_RE = /^user_[0-9a-z]{26}$/;
const TEAM_RE = /^team_[0-9a-z]{26}$/;

interface Totals {
  keyId: string;
  userId: string;
  teamId: string | null;
  day: string;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  costMicroUsd: number;
  lastUsedAt: Date | null;
}

function validRecord(r: UsageRecord, at: string): void {
  if (!KEY_RE.test(r.keyId)) throw invalid(`${at}.key_id`, "must be an ak_… id");
  if (!USER_RE.test(r.userId)) throw invalid(`${at}.user_id`, "must be a user_… id");
  if (r.teamId !== "" && !TEAM_RE.test(r.teamId)) throw invalid(`${at}.team_id`, "must be a team_… id or empty");
  if (!DAY_RE.test(r.day)) throw invalid(`${at}.day`, "must be YYYY-MM-DD");
  for (const f of ["requests", "inputTokens", "outputTokens", "costMicroUsd"] as const) {
    checkCount(r[f], `${at}.${f}`);
  }
}

/**
 * Applies a gateway's usage reports exactly once: each (gateway, seq) is
 * recorded in the same transaction as the totals it adds, so a report resent
 * after a lost acknowledgement (or a gateway restart) is acknowledged again
 * without counting twice.
 */
export async function reportUsage(
  app: AppContext,
  req: ReportUsageRequest,
  ctx: HandlerContext,
): Promise<ReportUsageResponse> {
  const principal = await authenticateGateway(app, ctx);
  await gatewayOfOrg(app, req.gatewayId, principal.orgId);
  if (req.reports.length > MAX_REPORTS) throw invalid("reports", `at most ${MAX_REPORTS} per call`);
  let records = 0;
  req.reports.forEach((rep, i) => {
    records += rep.records.length;
    rep.records.forEach((r, j) => validRecord(r, `reports[${i}].records[${j}]`));
  });
  if (records > MAX_RECORDS) throw invalid("reports", `at most ${MAX_RECORDS} records per call`);
  const orgId = principal.orgId;
  const seqs = [...new Set(req.reports.map((r) => r.seq))].sort((a, b) => (a < b ? -1 : 1));
  const receivedAt = app.now();
  const applied = await app.db.transaction().execute(async (trx) => {
    const fresh = new Set<bigint>();
    for (let i = 0; i < seqs.length; i += 1000) {
      const rows = await trx
        .insertInto("usage_reports")
        .values(seqs.slice(i, i + 1000).map((seq) => ({ gateway_id: req.gatewayId, seq: seq, org_id: orgId })))
        .onConflict((oc) => oc.columns(["gateway_id", "seq"]).doNothing())
        .returning("seq")
        .execute();
      for (const r of rows) fresh.add(BigInt(r.seq));
    }
    const totals = new Map<string, Totals>();
    for (const rep of req.reports) {
      if (!fresh.delete(rep.seq)) continue; // already applied, or a duplicate within this call
      for (const r of rep.records) addRecord(totals, r, receivedAt);
    }
    if (totals.size === 0) return 0;
    await applyTotals(trx, orgId, [...totals.values()]);
    // Thresholds are checked for the periods the usage was served in, not the one it arrived in.
    const keyDays = new Map<string, Set<string>>();
    for (const t of totals.values()) {
      let days = keyDays.get(t.keyId);
      if (!days) keyDays.set(t.keyId, (days = new Set()));
      days.add(t.day);
    }
    await checkBudgetAlerts(app, trx, orgId, keyDays);
    return totals.size;
  });
  app.metrics.usageReports(req.reports.length, applied);
  if (applied > 0) app.alertDelivery?.kick();
  return create(ReportUsageResponseSchema, { acknowledged: seqs });
}

/** A record without last_used_at (an older gateway) counts as used when it arrived. */
function addRecord(totals: Map<string, Totals>, r: UsageRecord, receivedAt: Date): void {
  const id = `${r.keyId}|${r.day}`;
  let t = totals.get(id);
  if (!t) {
    t = {
      keyId: r.keyId,
      userId: r.userId,
      teamId: r.teamId || null,
      day: r.day,
      requests: 0,
      inputTokens: 0,
      outputTokens: 0,
      costMicroUsd: 0,
      lastUsedAt: null,
    };
    totals.set(id, t);
  }
  t.requests += Number(r.requests);
  t.inputTokens += Number(r.inputTokens);
  t.outputTokens += Number(r.outputTokens);
  t.costMicroUsd += Number(r.costMicroUsd);
  const last = r.lastUsedAt ? timestampDate(r.lastUsedAt) : receivedAt;
  if (last && (!t.lastUsedAt || last > t.lastUsedAt)) t.lastUsedAt = last;
}

async function applyTotals(trx: Db, orgId: string, totals: Totals[]): Promise<void> {
  // Fixed order, so concurrent reports touching the same keys never deadlock.
  totals.sort((a, b) => (a.keyId === b.keyId ? (a.day < b.day ? -1 : 1) : a.keyId < b.keyId ? -1 : 1));
  for (const t of totals) {
    await trx
      .insertInto("usage_daily")
      .values({
        org_id: orgId,
        day: t.day,
        key_id: t.keyId,
        user_id: t.userId,
        team_id: t.teamId,
        requests: t.requests,
        input_tokens: t.inputTokens,
        output_tokens: t.outputTokens,
        cost_micro_usd: t.costMicroUsd,
      })
      .onConflict((oc) =>
        oc.columns(["org_id", "key_id", "day"]).doUpdateSet({
          requests: sql`usage_daily.requests + excluded.requests`,
          input_tokens: sql`usage_daily.input_tokens + excluded.input_tokens`,
          output_tokens: sql`usage_daily.output_tokens + excluded.output_tokens`,
          cost_micro_usd: sql`usage_daily.cost_micro_usd + excluded.cost_micro_usd`,
        }),
      )
      .execute();
  }
  // One update per key (its days summed), without touching updated_at: usage is not an admin change.
  const perKey = new Map<string, Totals>();
  for (const t of totals) {
    const k = perKey.get(t.keyId);
    if (!k) perKey.set(t.keyId, { ...t });
    else {
      k.requests += t.requests;
      k.inputTokens += t.inputTokens;
      k.outputTokens += t.outputTokens;
      k.costMicroUsd += t.costMicroUsd;
      if (t.lastUsedAt && (!k.lastUsedAt || t.lastUsedAt > k.lastUsedAt)) k.lastUsedAt = t.lastUsedAt;
    }
  }
  for (const k of perKey.values()) {
    await trx
      .updateTable("api_keys")
      .set({
        request_count: sql`coalesce(request_count, 0) + ${k.requests}`,
        input_tokens: sql`input_tokens + ${k.inputTokens}`,
        output_tokens: sql`output_tokens + ${k.outputTokens}`,
        cost_micro_usd: sql`cost_micro_usd + ${k.costMicroUsd}`,
        ...(k.lastUsedAt ? { last_used_at: sql`greatest(last_used_at, ${k.lastUsedAt})` } : {}),
      } as never)
      .where("org_id", "=", orgId)
      .where("id", "=", k.keyId)
      .execute();
  }
}
