import { createHmac } from "node:crypto";
import { newId, type Logger } from "@tollgate/shared";
import { sql } from "kysely";
import type { ControlPlaneConfig } from "../config.js";
import type { Metrics } from "../metrics.js";
import type { Db } from "../db/database.js";
import { recordAudits, type AuditEntryInput } from "../repositories/audit-log.js";

/** The budget period a moment falls in: `total`, `d:YYYY-MM-DD` or `mo:YYYY-MM` (UTC). */
export function budgetPeriodKey(period: string, now: Date): string {
  const iso = now.toISOString();
  if (period === "daily") return `d:${iso.slice(0, 10)}`;
  if (period === "monthly") return `mo:${iso.slice(0, 7)}`;
  return "total";
}

/**
 * After usage lands: for each key with a budget and thresholds, the spend of
 * the current period against each threshold. A crossed threshold is inserted
 * once (unique per key, period and threshold), audited, and queued for the
 * webhook, all in the transaction that added the usage.
 */
/** What the alert checks and their delivery need; a narrow view of the app context. */
export interface AlertDeps {
  db: Db;
  config: ControlPlaneConfig;
  metrics: Metrics;
  logger: Logger;
  now(): Date;
}

export async function checkBudgetAlerts(
  app: Pick<AlertDeps, "config" | "metrics" | "now">,
  trx: Db,
  orgId: string,
  keyDays: Map<string, Set<string>>,
): Promise<void> {
  const keyIds = [...keyDays.keys()];
  if (keyIds.length === 0) return;
  const keys = await trx
    .selectFrom("api_keys")
    .select([
      "id",
      "name",
      "key_prefix",
      "user_id",
      "budget_usd",
      "budget_period",
      "budget_alert_thresholds",
      "cost_micro_usd",
    ])
    .where("org_id", "=", orgId)
    .where("id", "in", keyIds)
    .where("budget_usd", "is not", null)
    .execute();
  const now = app.now();
  const audits: AuditEntryInput[] = [];
  for (const k of keys) {
    const thresholds = k.budget_alert_thresholds;
    if (thresholds.length === 0 || !k.budget_usd) continue;
    const periods = new Set(
      [...(keyDays.get(k.id) ?? [])].map((day) => budgetPeriodKey(k.budget_period, new Date(`${day}T00:00:00Z`))),
    );
    for (const period of periods) {
      const spentMicro = period === "total" ? Number(k.cost_micro_usd) : await periodSpend(trx, orgId, k.id, period);
      const spentUsd = spentMicro / 1e6;
      const pct = (spentUsd / k.budget_usd) * 100;
      for (const threshold of thresholds) {
        if (pct < threshold) break; // ascending
        const payload = {
          type: "budget.threshold_reached",
          org_id: orgId,
          key_id: k.id,
          key_name: k.name,
          key_prefix: k.key_prefix,
          user_id: k.user_id,
          threshold_pct: threshold,
          budget_usd: k.budget_usd,
          budget_period: k.budget_period,
          period,
          spent_usd: Math.round(spentUsd * 1e6) / 1e6,
          fired_at: now.toISOString(),
        };
        const id = newId("alrt");
        const inserted = await trx
          .insertInto("budget_alerts")
          .values({
            id,
            org_id: orgId,
            key_id: k.id,
            period,
            threshold,
            payload: JSON.stringify({ alert_id: id, ...payload }),
          })
          .onConflict((oc) => oc.columns(["key_id", "period", "threshold"]).doNothing())
          .returning("id")
          .executeTakeFirst();
        if (!inserted) continue;
        app.metrics.budgetAlert(threshold);
        audits.push({
          orgId,
          actor: "system",
          action: "api_key.budget_alert",
          targetType: "api_key",
          targetId: k.id,
          after: { alert_id: id, ...payload, webhook: app.config.alerts.webhookUrl ? "queued" : "not_configured" },
        });
      }
    }
  }
  await recordAudits(trx, audits);
}

async function periodSpend(trx: Db, orgId: string, keyId: string, period: string): Promise<number> {
  const [kind, value] = period.split(":") as [string, string];
  let q = trx
    .selectFrom("usage_daily")
    .select(sql<string>`coalesce(sum(cost_micro_usd), 0)`.as("spent"))
    .where("org_id", "=", orgId)
    .where("key_id", "=", keyId);
  q = kind === "d" ? q.where("day", "=", value) : q.where("day", "like", `${value}-%`);
  const row = await q.executeTakeFirstOrThrow();
  return Number(row.spent);
}

const BATCH = 20;
const TIMEOUT_MS = 5_000;
/** Longer than a whole batch of timed-out deliveries, so no other replica re-claims one in progress. */
const CLAIM_MS = BATCH * TIMEOUT_MS + 30_000;
const MAX_BACKOFF_MS = 3_600_000;

/**
 * Delivers queued budget alerts to ALERT_WEBHOOK_URL: POST JSON, retried with
 * exponential backoff until a 2xx. Each delivery is claimed first (SKIP
 * LOCKED), so replicas sharing a database do not send the same alert at once;
 * receivers dedupe on X-Tollgate-Alert-Id for the rare resend after a crash.
 */
export class AlertDelivery {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(
    private readonly app: Omit<AlertDeps, "now">,
    private readonly pollMs = 5_000,
  ) {}

  start(): void {
    if (!this.app.config.alerts.webhookUrl) return;
    this.timer = setInterval(() => this.kick(), this.pollMs);
    this.timer.unref();
    this.kick();
  }

  /** Runs a delivery pass now (or right after the one in progress). */
  kick(): void {
    if (this.stopped || !this.app.config.alerts.webhookUrl) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((err: unknown) => this.app.logger.warn({ err }, "budget alert delivery failed; will retry"))
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  private async pass(): Promise<void> {
    const url = this.app.config.alerts.webhookUrl!;
    const db = this.app.db;
    for (;;) {
      const claimed = await db.transaction().execute(async (trx) => {
        const rows = await trx
          .selectFrom("budget_alerts")
          .select(["id", "payload", "attempts"])
          .where("delivered_at", "is", null)
          .where("next_attempt_at", "<=", new Date())
          .orderBy("fired_at")
          .limit(BATCH)
          .forUpdate()
          .skipLocked()
          .execute();
        if (rows.length > 0) {
          await trx
            .updateTable("budget_alerts")
            .set({ next_attempt_at: new Date(Date.now() + CLAIM_MS) })
            .where(
              "id",
              "in",
              rows.map((r) => r.id),
            )
            .execute();
        }
        return rows;
      });
      if (claimed.length === 0 || this.stopped) return;
      for (const alert of claimed) {
        if (this.stopped) return; // still claimed: delivered after the claim lapses, by any replica
        const body = JSON.stringify(alert.payload);
        const error = await this.post(url, alert.id, body);
        const attempts = alert.attempts + 1;
        this.app.metrics.alertDelivery(error ? "failed" : "delivered");
        await db
          .updateTable("budget_alerts")
          .set(
            error
              ? {
                  attempts,
                  last_error: error,
                  next_attempt_at: new Date(Date.now() + Math.min(MAX_BACKOFF_MS, 1000 * 2 ** attempts)),
                }
              : { attempts, last_error: null, delivered_at: new Date() },
          )
          .where("id", "=", alert.id)
          .execute();
        if (error)
          this.app.logger.warn({ alertId: alert.id, attempts, error }, "budget alert webhook failed; will retry");
      }
    }
  }

  /** Null when delivered; otherwise why not (never the URL's credentials, never the secret). */
  private async post(url: string, alertId: string, body: string): Promise<string | null> {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "user-agent": "tollgate-control-plane",
      "x-tollgate-alert-id": alertId,
    };
    const secret = this.app.config.alerts.webhookSecret;
    if (secret) headers["x-tollgate-signature"] = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
    try {
      const res = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(TIMEOUT_MS) });
      await res.body?.cancel();
      return res.ok ? null : `webhook answered HTTP ${res.status}`;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      return e.name === "TimeoutError"
        ? `webhook did not answer within ${TIMEOUT_MS} ms`
        : `webhook unreachable (${e.cause?.code ?? e.name})`;
    }
  }
}
