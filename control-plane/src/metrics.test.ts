import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createMetrics } from "./metrics.js";

const PROMTOOL = "/usr/bin/promtool";
/** prom-client's own default gauges promtool flags: prom-client's names, not Tollgate's to rename. */
const PROM_CLIENT_DEFAULTS = new Set([
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
]);

describe("control plane metrics", () => {
  it("exports tollgate_build_info naming the service and its version", async () => {
    const text = await createMetrics().registry.metrics();
    expect(text).toMatch(/^tollgate_build_info\{service="control-plane",version="0\.1\.0",revision="[^"]+"\} 1$/m);
  });

  it.runIf(existsSync(PROMTOOL))("passes promtool check metrics, prom-client's defaults aside", async () => {
    const text = await createMetrics().registry.metrics();
    let out: string;
    try {
      out = execFileSync(PROMTOOL, ["check", "metrics"], { input: text, encoding: "utf8", stdio: "pipe" });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      out = `${e.stdout ?? ""}${e.stderr ?? ""}`;
    }
    const problems = out.split("\n").filter((l) => l.trim() !== "" && !PROM_CLIENT_DEFAULTS.has(l.split(" ")[0]!));
    expect(problems).toEqual([]);
  });
});
