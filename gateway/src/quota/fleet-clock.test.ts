import { describe, expect, it } from "vitest";
import { createLogger } from "@tollgate/shared";
import { FleetClock } from "./fleet-clock.js";

const logger = createLogger({ name: "test", level: "silent" });

describe("FleetClock", () => {
  it("takes the offset of the recent sample with the shortest round trip, the control plane's own time left out", () => {
    let local = 1_000_000;
    const c = new FleetClock({ now: () => local }, logger);
    // True offset +40 s. A fast call: 10 ms there and back.
    c.sample(local, local + 40_005, local + 40_005, local + 10);
    expect(c.offsetMs).toBe(40_000);
    // A slow call whose answer took 2 s to come back: its midpoint is 1 s off; the fast sample stays.
    local += 1_000;
    c.sample(local, local + 40_005, local + 40_005, local + 2_010);
    expect(c.offsetMs).toBe(40_000);
    // A long row-lock wait on the control plane is not round trip: 5 ms each way, 3 s inside.
    local += 1_000;
    c.sample(local, local + 40_005, local + 43_005, local + 3_010);
    expect(c.offsetMs).toBe(40_000);
    expect(c.now()).toBe(local + 40_000);
    expect(c.source).toBe("acquire");
  });

  it("forgets samples older than its window, so a drifting clock is followed", () => {
    let local = 1_000_000;
    const c = new FleetClock({ now: () => local }, logger, { windowMs: 60_000 });
    c.sample(local, local + 500, local + 500, local); // 0 ms round trip, offset 500
    local += 30_000;
    c.sample(local, local + 705, local + 705, local + 10); // 10 ms, offset 700: the older one is still better
    expect(c.offsetMs).toBe(500);
    local += 40_000;
    c.sample(local, local + 805, local + 805, local + 10);
    expect(c.offsetMs).toBe(800); // the first sample aged out; on a tied round trip the newer wins
  });

  it("uses the persisted offset until it measures one, a one-way stamp until a round trip, and warns once past 2 s", () => {
    const warnings: unknown[] = [];
    const log = createLogger({ name: "test", level: "silent" });
    log.warn = ((o: unknown) => void warnings.push(o)) as typeof log.warn;
    const local = 5_000_000;
    const persisted: number[] = [];
    const c = new FleetClock({ now: () => local }, log, { onOffset: (ms) => persisted.push(ms) });
    c.restore(-40_000);
    expect(c.offsetMs).toBe(-40_000);
    expect(c.source).toBe("persisted");
    expect(c.now()).toBe(local - 40_000);
    // The control plane is unreachable: no sample, the persisted offset stands.
    c.coarse(local - 39_990, local); // the sync stream's Settings, 10 ms late
    expect(c.offsetMs).toBe(-39_990);
    c.sample(local, local - 40_000 + 5, local - 40_000 + 5, local + 10);
    expect(c.offsetMs).toBe(-40_000);
    c.coarse(local, local); // a round trip beats any one-way stamp
    expect(c.offsetMs).toBe(-40_000);
    c.restore(0); // too late: measured already
    expect(c.offsetMs).toBe(-40_000);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ clockOffsetMs: -40_000 });
    expect(persisted.at(-1)).toBe(-40_000);
  });
});
