import { describe, expect, it } from "vitest";
import { BatchTimer } from "./batch-timer.js";

describe("BatchTimer", () => {
  it("widens the gap between early batches while rows come faster than busy.rowsPerMs, and narrows it again when they slow down", () => {
    const timer = new BatchTimer(() => {}, 25, 5, { rowsPerMs: 4, gapMs: 20 });
    expect(timer.currentGapMs).toBe(5);
    // The first batch has no interval to measure a rate over.
    timer.sent(10_000);
    expect(timer.currentGapMs).toBe(5);
    // A batch of 1,000,000 rows right after the last one: far above 4 rows per ms.
    timer.sent(1_000_000);
    expect(timer.currentGapMs).toBe(20);
    // An empty batch (hooks' ops only) is a rate of 0.
    timer.sent(0);
    expect(timer.currentGapMs).toBe(5);
  });

  it("never makes the busy gap shorter than minBatchGapMs, and keeps one gap without a busy setting", () => {
    const shorter = new BatchTimer(() => {}, 25, 5, { rowsPerMs: 1, gapMs: 2 });
    shorter.sent(1);
    shorter.sent(1_000_000);
    expect(shorter.currentGapMs).toBe(5);
    const plain = new BatchTimer(() => {}, 25, 5);
    plain.sent(1);
    plain.sent(1_000_000);
    expect(plain.currentGapMs).toBe(5);
  });
});
