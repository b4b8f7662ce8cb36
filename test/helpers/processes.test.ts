import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTempDir, startNodeService, type TempDir } from "@tollgate/testkit";

// A stand-in service: logs pino-style JSON, prints its env, obeys SIGTERM
// (or ignores it when told), and can crash on request.
const FAKE_SERVICE = `
const log = (o) => process.stdout.write(JSON.stringify({ level: 30, time: Date.now(), ...o }) + "\\n");
if (process.env.MODE === "crash") { console.error("boom: EADDRINUSE :::8000"); process.exit(3); }
log({ msg: "env", keys: Object.keys(process.env).sort() });
process.stdout.write("not json\\n");
setTimeout(() => log({ msg: "fake listening", port: 1234 }), 50);
setTimeout(() => log({ msg: "later event", n: 1 }), 150);
process.on("SIGTERM", () => {
  if (process.env.MODE === "stubborn") return;
  log({ msg: "stopping" });
  process.exit(0);
});
setInterval(() => {}, 1000);
`;

describe("startNodeService", () => {
  let tmp: TempDir;
  let script: string;
  beforeAll(async () => {
    tmp = await createTempDir("proc-");
    script = join(tmp.path, "fake-service.mjs");
    await writeFile(script, FAKE_SERVICE);
  });
  afterAll(() => tmp.cleanup());

  const start = (env: Record<string, string> = {}, startTimeoutMs = 10_000) =>
    startNodeService({
      label: "fake",
      mainPath: script,
      env: { PATH: process.env.PATH ?? "", HOME: tmp.path, ...env },
      dataDir: join(tmp.path, "data"),
      ready: (l) => l.msg === "fake listening",
      startTimeoutMs,
    });

  it("waits for the ready line, captures logs, and stops on SIGTERM", async () => {
    const { proc, readyLine } = await start();
    expect(readyLine.port).toBe(1234);
    const env = proc.logLines().find((l) => l.msg === "env");
    expect(env?.keys).toEqual(["HOME", "PATH"]);
    expect(proc.logLines().some((l) => l.msg === "not json")).toBe(true);
    const mark = proc.lineCount();
    await expect(proc.waitForLog((l) => l.msg === "later event", 5_000, { after: mark })).resolves.toMatchObject({
      n: 1,
    });
    await expect(proc.waitForLog("fake listening", 100, { after: proc.lineCount() })).rejects.toThrow(/did not log/);
    const exit = await proc.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(proc.running).toBe(false);
    expect(await proc.stop()).toEqual(exit);
    const file = readFileSync(proc.logFile, "utf8");
    expect(file).toContain('"msg":"stopping"');
    expect(file).toMatch(/exited code=0/);
  });

  it("kill9 kills at once", async () => {
    const { proc } = await start({ MODE: "stubborn" });
    expect(await proc.kill9()).toEqual({ code: null, signal: "SIGKILL" });
  });

  it("reports an early exit with the captured log", async () => {
    await expect(start({ MODE: "crash" })).rejects.toThrow(/exited early \(code=3[\s\S]*boom: EADDRINUSE/);
  });

  it("times out with the captured log and leaves nothing running", async () => {
    // The deadline passes once the child's first lines are captured, not after a
    // wall-clock 300 ms that a loaded machine may spend starting Node.
    let armed: { ms: number; fire: () => void } | undefined;
    const started = startNodeService({
      label: "slow",
      mainPath: script,
      env: { PATH: process.env.PATH ?? "" },
      dataDir: join(tmp.path, "data"),
      ready: (l) => {
        if (l.msg === "not json") queueMicrotask(() => armed?.fire());
        return false;
      },
      startTimeoutMs: 300,
      scheduleTimeout: (fire, ms) => {
        armed = { ms, fire };
        return () => {
          armed = undefined;
        };
      },
    });
    await expect(started).rejects.toThrow(/slow did not log[\s\S]*within 300 ms[\s\S]*not json/);
    expect(armed).toBeUndefined();
    expect(readFileSync(join(tmp.path, "data", "slow.log"), "utf8")).toMatch(/slow pid=\d+ exited/);
  });
});
