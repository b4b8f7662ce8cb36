import { dirname, join } from "node:path";
import type { Logger } from "@tollgate/shared";
import type { Settings } from "@tollgate/shared";
import { systemScheduler, type Clock, type Scheduler } from "../clock.js";
import type { GatewayStore } from "../db/store.js";
import type { LogWriter } from "../db/request-log-writer.js";
import { FleetClock } from "./fleet-clock.js";
import { LimitResolver, NO_DEFAULTS, type QuotaDefaults } from "./limits.js";
import { QuotaManager, type QuotaManagerOptions } from "./quota-manager.js";
import { META_UPSERT_SQL } from "../db/meta-repository.js";
import { JOURNAL_DIR, UsageJournal } from "../db/usage-journal.js";
import { OUTBOX_DELETE_SQL, OUTBOX_INSERT_SQL, UsageOutbox, type PendingTake } from "./usage-outbox.js";

const DEFAULTS_META_KEY = "quota_defaults";
/** The shortest time between two usage outbox rows. */
const OUTBOX_ROW_EVERY_MS = 100;
const NO_OUTBOX_ROW: PendingTake = { row: null, checkpoint: null, undo: () => undefined, done: () => undefined };
/** Gateways last seen in the fleet: the quota fallback's divisor, kept across restarts. */
const FLEET_META_KEY = "quota_active_gateways";
/** The clock offset from the control plane last measured, for quota windows before the first Acquire after a restart. */
const OFFSET_META_KEY = "quota_clock_offset_ms";

/** Prices for cost accounting: micro-USD, null when the model has no known price. */
export interface PriceLookup {
  costMicroUsd(
    provider: string,
    model: string,
    usage: {
      promptTokens: number | null;
      completionTokens: number | null;
      cacheReadTokens?: number | null;
      cacheWriteTokens?: number | null;
    },
  ): number | null;
  estimateMicroUsd(provider: string, model: string, promptTokens: number, maxOutputTokens: number): number | null;
}

export interface GatewayQuotaOptions
  extends Pick<
    QuotaManagerOptions,
    "renewEveryMs" | "idleReleaseMs" | "refuseCacheMs" | "prefetchFraction" | "onDegraded"
  > {
  store: GatewayStore;
  logWriter: LogWriter;
  /** This host's clock (the fleet clock corrects it). */
  clock: Clock;
  logger: Logger;
  /** Paces outbox rows (default: the wall clock and Node's timers). */
  scheduler?: Scheduler;
  /** The usage journal beside the SQLite file (default), with an fdatasync per line, or none (false). */
  journal?: boolean | { fsync: boolean };
}

/**
 * The gateway's quota state: limits per key, fleet leases, the persisted
 * consumption and the usage outbox, wired to the log writer's batches.
 */
export class GatewayQuota {
  readonly limits = new LimitResolver();
  readonly manager: QuotaManager;
  readonly outbox: UsageOutbox;
  /** The control plane's time (this host's clock corrected by the measured offset): quota windows, reset headers, usage days. */
  readonly clock: FleetClock;
  private readonly loadStmt;
  /** Deletes the persisted consumption of windows that ended an hour ago or more. */
  readonly purgeEndedWindows: () => void;
  private readonly store: GatewayStore;
  private readonly localClock: Clock;
  private readonly logger: Logger;

  constructor(options: GatewayQuotaOptions) {
    const { store, logWriter, logger } = options;
    const localClock = options.clock;
    const scheduler = options.scheduler ?? systemScheduler;
    this.store = store;
    this.localClock = localClock;
    this.logger = logger;
    const db = store.db;
    this.loadStmt = db.prepare<[string, string], { consumed: number }>(
      `SELECT consumed FROM quota_consumed WHERE counter = ? AND window_key = ?`,
    );
    this.clock = new FleetClock(localClock, logger, {
      onOffset: (ms) => {
        void logWriter.setMeta(OFFSET_META_KEY, String(ms)).then((ok) => {
          if (!ok) logger.warn("could not persist the clock offset from the control plane");
        });
      },
    });
    this.manager = new QuotaManager(localClock, logger, {
      renewEveryMs: options.renewEveryMs,
      idleReleaseMs: options.idleReleaseMs,
      refuseCacheMs: options.refuseCacheMs,
      prefetchFraction: options.prefetchFraction,
      onDegraded: options.onDegraded,
      time: this.clock,
      loadConsumed: (counter, window) => (db.open ? (this.loadStmt.get(counter, window)?.consumed ?? 0) : 0),
      onActiveGateways: (n) => {
        void logWriter.setMeta(FLEET_META_KEY, String(n)).then((ok) => {
          if (!ok) logger.warn("could not persist the fleet size for the quota fallback");
        });
      },
    });
    // Consumption and usage are written by the log writer's thread, in the same transaction as the request rows.
    const upsert = logWriter.statement(
      `INSERT INTO quota_consumed (counter, window_key, consumed, ends_at_ms) VALUES (?, ?, ?, ?)
       ON CONFLICT (counter, window_key) DO UPDATE SET consumed = excluded.consumed`,
    );
    const insertOutbox = logWriter.statement(OUTBOX_INSERT_SQL);
    // Writes outside the request batches go through the writer thread too: the event loop never waits for the lock.
    const deleteOutbox = logWriter.statement(OUTBOX_DELETE_SQL);
    const setCheckpoint = logWriter.statement(META_UPSERT_SQL);
    const journal =
      options.journal === false
        ? undefined
        : new UsageJournal(join(dirname(store.path), JOURNAL_DIR), {
            logger,
            fsync: typeof options.journal === "object" && options.journal.fsync,
          });
    this.outbox = new UsageOutbox({
      journal,
      db,
      logger,
      now: () => localClock.now(),
      remove: async (seqs) => {
        await logWriter.run(
          seqs.map((seq) => [deleteOutbox, [seq]]),
          "delete acknowledged usage reports",
        );
      },
    });
    const purgeStmt = logWriter.statement(`DELETE FROM quota_consumed WHERE ends_at_ms > 0 AND ends_at_ms < ?`);
    // Window ends are in fleet time.
    this.purgeEndedWindows = () =>
      void logWriter.run([[purgeStmt, [this.clock.now() - 3_600_000]]], "purge ended quota windows");
    // One outbox row per OUTBOX_ROW_EVERY_MS at most (each is a report row the control plane
    // applies once), however often the log batches go; flush() and close() take everything.
    let lastOutboxRowMs = 0;
    let outboxTimerSet = false;
    logWriter.addFlushHook((final) => {
      const dirty = this.manager.takeDirty();
      const now = scheduler.now();
      const wait = OUTBOX_ROW_EVERY_MS - (now - lastOutboxRowMs);
      let outbox = NO_OUTBOX_ROW;
      if (final || wait <= 0) {
        outbox = this.outbox.takePending();
        if (outbox.row) lastOutboxRowMs = now;
      } else if (this.outbox.hasPending && !outboxTimerSet) {
        outboxTimerSet = true;
        scheduler.later(() => {
          outboxTimerSet = false;
          logWriter.touch();
        }, wait);
      }
      if (dirty.rows.length === 0 && outbox.row === null) return;
      const ops: Array<[number, unknown[]]> = dirty.rows.map((d) => [
        upsert,
        [d.counter, d.window, d.consumed, d.endsAtMs],
      ]);
      if (outbox.row) ops.push([insertOutbox, outbox.row]);
      if (outbox.checkpoint) ops.push([setCheckpoint, outbox.checkpoint]);
      return {
        ops,
        undo: () => {
          dirty.undo();
          outbox.undo();
        },
        done: () => {
          outbox.done();
          // Usage that came while this take was written waited for it (one take at a time).
          if (this.outbox.hasPending) logWriter.touch();
        },
      };
    });
    this.touch = () => logWriter.touch();
    const fleet = Number(store.meta.get(FLEET_META_KEY));
    if (fleet > 0) this.manager.setActiveGateways(fleet);
    const offset = store.meta.get(OFFSET_META_KEY);
    if (offset) this.clock.restore(Number(offset));
    const saved = store.meta.get(DEFAULTS_META_KEY);
    if (saved) {
      try {
        this.limits.setDefaults({ ...NO_DEFAULTS, ...(JSON.parse(saved) as Partial<QuotaDefaults>) });
      } catch {
        // A damaged value: the control plane sends the current one on connect.
      }
    }
  }

  /** Schedules a log batch (which persists quota state and the outbox). */
  readonly touch: () => void;

  /** Quota defaults from the control plane's Settings event; kept for restarts without it. */
  applySettings(s: Settings): void {
    // Sent first on every stream: an offset before the first Acquire, if none was measured yet.
    if (s.serverTimeMs > 0n) this.clock.coarse(Number(s.serverTimeMs), this.localClock.now());
    const d = s.quotaDefaults;
    const num = (v: bigint | undefined) => (v === undefined ? null : Number(v));
    const next: QuotaDefaults = {
      keyRpmLimit: num(d?.keyRpmLimit),
      keyTpmLimit: num(d?.keyTpmLimit),
      keyTokensPerDayLimit: num(d?.keyTokensPerDayLimit),
      teamTpmLimit: num(d?.teamTpmLimit),
      teamDailyTokenLimit: num(d?.teamDailyTokenLimit),
    };
    const json = JSON.stringify(next);
    if (json === JSON.stringify(this.limits.getDefaults())) return;
    this.limits.setDefaults(next);
    this.store.meta.set(DEFAULTS_META_KEY, json);
    this.logger.info({ defaults: next }, "quota defaults from the control plane applied");
  }
}
