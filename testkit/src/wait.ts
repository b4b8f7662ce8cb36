// Polling helpers: for state another process or an async loop changes, where
// there is no event to await.

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Said in the timeout error. */
  message?: string;
}

/**
 * Polls `fn` until it returns a truthy value (which is returned) or time runs
 * out. A throw counts as "not yet"; the last one is quoted in the timeout error.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 50, message }: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let lastValue: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      lastValue = v;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why =
        lastError !== undefined ? `last error: ${String(lastError)}` : `last value: ${JSON.stringify(lastValue)}`;
      throw new Error(`waitFor timed out after ${timeoutMs} ms${message ? ` (${message})` : ""}; ${why}`);
    }
    await sleep(intervalMs);
  }
}

/** Polls `fn` every 10 ms until it returns something other than undefined. */
export async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error("condition not met in time");
    await sleep(10);
  }
}
