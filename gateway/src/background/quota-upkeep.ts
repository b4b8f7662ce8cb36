import type { Logger } from "@tollgate/shared";
import type { GatewayQuota } from "../quota/gateway-quota.js";
import type { QuotaRpc } from "../quota/quota-rpc.js";
import type { UsageRpc } from "../quota/usage-outbox.js";

export interface QuotaUpkeepOptions {
  quota: GatewayQuota;
  /** The control plane's QuotaService. */
  rpc: QuotaRpc & UsageRpc;
  logger: Logger;
  /** Lease renewal and release, and the purge of ended windows. */
  maintainEveryMs?: number;
  /** Usage reports from the outbox. */
  reportEveryMs?: number;
}

/** The quota work that runs on timers: lease upkeep, purging ended windows, usage reports. */
export class QuotaUpkeep {
  private timers: NodeJS.Timeout[] = [];
  private started = false;

  constructor(private readonly options: QuotaUpkeepOptions) {}

  start(): void {
    const { quota, rpc, logger } = this.options;
    quota.manager.setRpc(rpc);
    this.started = true;
    const maintain = setInterval(() => {
      quota.manager.maintain().catch((err: unknown) => logger.warn({ err }, "quota lease upkeep failed"));
      quota.purgeEndedWindows();
    }, this.options.maintainEveryMs ?? 2_000);
    const report = setInterval(() => void quota.outbox.send(rpc), this.options.reportEveryMs ?? 1_000);
    maintain.unref();
    report.unref();
    this.timers.push(maintain, report);
  }

  /** Reports what the outbox holds now (at shutdown). */
  flushUsage(): Promise<void> {
    return this.started ? this.options.quota.outbox.send(this.options.rpc, true) : Promise.resolve();
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // Held units go back to the fleet now rather than at the lease's expiry; best effort.
    await Promise.race([
      this.options.quota.manager.releaseAll().catch(() => undefined),
      new Promise((r) => setTimeout(r, 1000).unref()),
    ]);
  }
}
