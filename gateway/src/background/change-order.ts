import type { Change } from "@tollgate/shared";

type BatchPlan =
  | { kind: "noop" }
  | { kind: "gap"; expected: number; got: number }
  | { kind: "apply"; changes: Change[] };

/**
 * Decides what to do with a change batch given the applied revision: drop
 * what is already applied, refuse a gap, else apply the rest.
 */
export function planChangeBatch(applied: number, changes: readonly Change[]): BatchPlan {
  const fresh = changes.filter((c) => Number(c.revision) > applied);
  if (fresh.length === 0) return { kind: "noop" };
  let expected = applied + 1;
  for (const c of fresh) {
    const got = Number(c.revision);
    if (got !== expected) return { kind: "gap", expected, got };
    expected++;
  }
  return { kind: "apply", changes: fresh };
}
