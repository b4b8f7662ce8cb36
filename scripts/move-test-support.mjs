#!/usr/bin/env node
// One-off for issue 14 (run by the lead after the restructuring branches merge,
// then delete this script): points the unit tests at @tollgate/testkit and moves
// the test support that needs a service's own source out of src/.
//
//   node scripts/move-test-support.mjs          # rewrites files, git mv/rm
//   node scripts/move-test-support.mjs --dry    # prints what it would do
//
// - `import { a, b } from "<rel>/test-support/<m>.js"` (gateway) and
//   `"<rel>/testing/<m>.js"` (control plane): the names testkit exports come from
//   "@tollgate/testkit"; the rest from the module's new home below.
// - Modules that import their service's source move to <service>/test/ (outside
//   src/, so not in dist), their relative imports recomputed:
//     gateway/src/test-support/harness.ts (testConfig only)  → gateway/test/test-config.ts
//     control-plane/src/testing/test-config.ts               → control-plane/test/test-config.ts
//     control-plane/src/testing/test-control-plane.ts        → control-plane/test/test-control-plane.ts
//     control-plane/src/testing/test-database.ts             → control-plane/test/test-database.ts
// - Every other module of both folders is deleted: testkit has it.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dry = process.argv.includes("--dry");
const testkitNames = new Set(Object.keys(await import("@tollgate/testkit")));
// Type-only exports are invisible at run time: list the ones the unit tests use.
for (const t of ["TestPki", "TestKey", "KeyOverrides", "RawResponse", "FakeControlPlaneOptions", "TestSigningKey", "SeenOpenAiRequest", "SeenAnthropicRequest"]) testkitNames.add(t);

const moves = new Map([
  ["gateway/src/test-support/harness.ts", "gateway/test/test-config.ts"],
  ["control-plane/src/testing/test-config.ts", "control-plane/test/test-config.ts"],
  ["control-plane/src/testing/test-control-plane.ts", "control-plane/test/test-control-plane.ts"],
  ["control-plane/src/testing/test-database.ts", "control-plane/test/test-database.ts"],
]);
const supportDirs = ["gateway/src/test-support", "control-plane/src/testing"];

const rel = (fromFile, toFile) => {
  const r = relative(dirname(fromFile), toFile).replace(/\.ts$/, ".js");
  return r.startsWith(".") ? r : `./${r}`;
};
const walk = (dir) =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith(".ts") ? [p] : [];
  });

const importRe = /import\s+(type\s+)?\{([^}]*)\}\s+from\s+"([^"]+)";/g;

const MARK = "\u0000testkit-import\u0000";
const DROP = "\u0000drop\u0000";

/** Rewrites one file's imports of test support (one merged "@tollgate/testkit" import); recomputes relative paths when the file moves. */
function rewrite(text, fileOld, fileNew) {
  const kit = [];
  const out = text.replace(importRe, (whole, typeKw, names, spec) => {
    if (!spec.startsWith(".")) return whole;
    const target = resolve(dirname(join(root, fileOld)), spec).replace(/\.js$/, ".ts");
    const targetRel = relative(root, target);
    const inSupport = supportDirs.some((d) => targetRel.startsWith(`${d}/`));
    if (!inSupport) {
      // A plain relative import: recompute only when this file moves.
      return fileOld === fileNew ? whole : whole.replace(`"${spec}"`, `"${rel(join(root, fileNew), target)}"`);
    }
    const list = names.split(",").map((s) => s.trim()).filter(Boolean).map((n) => (typeKw && !n.startsWith("type ") ? `type ${n}` : n));
    const bare = (n) => n.replace(/^type\s+/, "").split(/\s+as\s+/)[0];
    const fromKit = list.filter((n) => testkitNames.has(bare(n)));
    const rest = list.filter((n) => !testkitNames.has(bare(n)));
    const lines = [];
    if (fromKit.length) {
      if (kit.length === 0) lines.push(MARK);
      for (const n of fromKit) if (!kit.includes(n)) kit.push(n);
    }
    if (rest.length) {
      const home = moves.get(targetRel);
      if (!home) throw new Error(`${fileOld}: ${rest.join(", ")} from ${targetRel} is neither in testkit nor moved`);
      lines.push(`import { ${rest.join(", ")} } from "${rel(join(root, fileNew), join(root, home))}";`);
    }
    return lines.length ? lines.join("\n") : DROP;
  });
  const sorted = [...kit].sort((a, b) => a.replace(/^type /, "").localeCompare(b.replace(/^type /, "")));
  return out
    .replace(MARK, `import { ${sorted.join(", ")} } from "@tollgate/testkit";`)
    .replaceAll(`${DROP}\n`, "")
    .replaceAll(DROP, "");
}

const git = (...args) => (dry ? console.log("git", ...args) : execFileSync("git", args, { cwd: root, stdio: "inherit" }));
const write = (file, text) => (dry ? console.log(`write ${file}`) : writeFileSync(join(root, file), text));

// 1. The moved modules (the harness keeps only testConfig and what it imports).
for (const [from, to] of moves) {
  let text = readFileSync(join(root, from), "utf8");
  if (from.endsWith("harness.ts")) {
    const fn = /\/\*\*[\s\S]*?\*\/\s*export function testConfig[\s\S]*?\n}\n/.exec(text)?.[0] ?? /export function testConfig[\s\S]*?\n}\n/.exec(text)?.[0];
    if (!fn) throw new Error(`${from}: no testConfig`);
    const imports = text.match(/^import[^;]*;$/gm) ?? [];
    const used = imports.filter((i) => !/node:stream|@tollgate\/shared/.test(i));
    text = `${used.join("\n")}\n\n${fn}`;
  }
  if (!dry) execFileSync("mkdir", ["-p", join(root, dirname(to))]);
  write(to, rewrite(text, from, to));
  git("add", to);
}
// 2. The unit tests and anything else under src/ importing test support.
for (const dir of ["gateway/src", "control-plane/src"]) {
  for (const abs of walk(join(root, dir))) {
    const file = relative(root, abs);
    if (supportDirs.some((d) => file.startsWith(`${d}/`))) continue;
    const text = readFileSync(abs, "utf8");
    const next = rewrite(text, file, file);
    if (next !== text) write(file, next);
  }
}
// 3. The old folders go.
for (const d of supportDirs) if (existsSync(join(root, d))) git("rm", "-rq", d);
