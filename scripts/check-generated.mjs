#!/usr/bin/env node
// CI guard: regenerates the protobuf code and fails if it differs from what is
// committed (generated code is never edited by hand; `pnpm generate` fixes it).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const genDir = "shared/src/gen";
const buf = join(root, "node_modules", ".bin", process.platform === "win32" ? "buf.cmd" : "buf");

function die(message) {
  console.error(`check-generated: ${message}`);
  process.exit(1);
}

if (!existsSync(buf)) die(`${buf} is missing: run \`pnpm install\` first.`);

// buf.gen.yaml uses the local protoc-gen-es from node_modules/.bin: put it on PATH.
const env = { ...process.env, PATH: `${join(root, "node_modules", ".bin")}:${process.env.PATH ?? ""}` };
const gen = spawnSync(buf, ["generate"], { cwd: root, env, stdio: "inherit" });
if (gen.error) die(`could not run buf: ${gen.error.message}`);
if (gen.status !== 0) die(`\`buf generate\` failed (exit ${gen.status}); fix the proto files or buf.gen.yaml.`);

const st = spawnSync("git", ["status", "--porcelain", "--untracked-files=all", "--", genDir], {
  cwd: root,
  encoding: "utf8",
});
if (st.error) die(`could not run git: ${st.error.message}`);
if (st.status !== 0) die(`\`git status\` failed: ${st.stderr.trim()}`);
const changed = st.stdout.split("\n").filter((l) => l.trim() !== "");
if (changed.length > 0) {
  console.error(`check-generated: generated code in ${genDir} differs from the proto files:`);
  for (const l of changed) console.error(`  ${l}`);
  console.error("Run `pnpm generate` and commit the result (never edit generated files by hand).");
  process.exit(1);
}
console.log("generated code is up to date");
