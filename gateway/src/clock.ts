/** Time source; tests pass a fixed or stepping clock. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * Time and one-shot timers for a cadence (the usage outbox's): tests inject a
 * manual one so the cadence is asserted without waiting on the wall clock.
 */
export interface Scheduler extends Clock {
  /** Runs `fn` once after `ms`, without keeping the process alive. */
  later(fn: () => void, ms: number): void;
}

export const systemScheduler: Scheduler = {
  now: () => Date.now(),
  later: (fn, ms) => void setTimeout(fn, ms).unref(),
};
