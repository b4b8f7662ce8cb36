import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// The gateway's node flags live in gateway/node-flags.json (the benches and scripts/start.mjs
// read it); the image's CMD and the package's start script must say the same, or a deployment
// would run a gateway other than the one measured.
const read = (rel: string) => readFileSync(fileURLToPath(new URL(rel, import.meta.url)), "utf8");
const { flags } = JSON.parse(read("../node-flags.json")) as { flags: string[] };

/** The exec-form CMD of one stage of deploy/Dockerfile. */
function stageCmd(dockerfile: string, stage: string): string[] {
  const body = dockerfile.split(/^FROM /m).find((s) => new RegExp(`\\bAS ${stage}\\s*$`, "m").test(s.split("\n")[0]!));
  const cmd = body?.match(/^CMD (\[.*\])\s*$/m)?.[1];
  if (cmd === undefined) throw new Error(`no CMD in the ${stage} stage`);
  return JSON.parse(cmd) as string[];
}

describe("the gateway's node flags", () => {
  it("are the ones the gateway image starts with", () => {
    expect(stageCmd(read("../../deploy/Dockerfile"), "gateway")).toEqual(["node", ...flags, "dist/main.js"]);
  });

  it("are the ones `pnpm start` in the gateway package uses", () => {
    const pkg = JSON.parse(read("../package.json")) as { scripts: { start: string } };
    expect(pkg.scripts.start).toBe(["node", ...flags, "dist/main.js"].join(" "));
  });

  it("are accepted by node, on the command line and in NODE_OPTIONS (scripts/start.mjs)", () => {
    const probe = ["-e", "process.stdout.write('ok')"];
    const direct = spawnSync(process.execPath, [...flags, ...probe], { encoding: "utf8" });
    expect(direct.stderr).toBe("");
    expect(direct.stdout).toBe("ok");
    const viaEnv = spawnSync(process.execPath, probe, {
      encoding: "utf8",
      env: { ...process.env, NODE_OPTIONS: flags.join(" ") },
    });
    expect(viaEnv.stderr).toBe("");
    expect(viaEnv.stdout).toBe("ok");
  });
});
