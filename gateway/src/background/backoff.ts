/**
 * Full-jitter exponential backoff (AWS architecture blog): a uniform delay in
 * [0, min(cap, base·2^attempt)). Spreads a fleet's reconnects after a
 * control-plane restart instead of having every gateway retry in lockstep.
 */
export function fullJitterDelayMs(
  attempt: number,
  baseMs: number,
  capMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
