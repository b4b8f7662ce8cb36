// Validates deploy/grafana/*.json against Grafana's dashboard schema (deploy/grafana/schema/, see
// its $comment for provenance) and checks every panel query, and every alert rule, names a metric
// a service exports.
// Part of `pnpm test:chart`.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const dir = join(root, "deploy/grafana");
const schema = JSON.parse(readFileSync(join(dir, "schema/dashboard.schema.json"), "utf8"));
const ajv = new Ajv({ strict: false, allErrors: true });
const validate = ajv.compile({ ...schema, $ref: "#/definitions/Dashboard" });

/** Metric names registered in the services' metrics.ts files today. */
function exportedMetrics() {
  const names = new Set(["up"]);
  for (const f of ["gateway/src/metrics.ts", "control-plane/src/metrics.ts"]) {
    for (const m of readFileSync(join(root, f), "utf8").matchAll(/name:\s*"(tollgate_[a-z0-9_]+)"/g)) {
      names.add(m[1]);
      for (const suffix of ["_bucket", "_sum", "_count"]) names.add(m[1] + suffix);
    }
  }
  return names;
}

let failed = false;
const exported = exportedMetrics();
for (const f of readdirSync(dir).filter((n) => n.endsWith(".json"))) {
  const dash = JSON.parse(readFileSync(join(dir, f), "utf8"));
  if (!validate(dash)) {
    failed = true;
    console.log(`${f}: not a valid Grafana dashboard:\n${ajv.errorsText(validate.errors, { separator: "\n" })}`);
  }
  const ids = new Set();
  for (const p of dash.panels) {
    if (ids.has(p.id)) (failed = true), console.log(`${f}: duplicate panel id ${p.id}`);
    ids.add(p.id);
    for (const t of p.targets ?? []) {
      for (const [name] of t.expr.matchAll(/\btollgate_[a-z0-9_]+/g)) {
        if (!exported.has(name)) {
          failed = true;
          console.log(`${f}: panel "${p.title}" queries ${name}, which no service exports`);
        }
      }
    }
  }
  console.log(`${f}: ${dash.panels.length} panels, valid against Grafana's dashboard schema: ${!failed}`);
}
// The alert rules likewise: a rule on a metric nobody exports would never fire.
const rules = readFileSync(join(root, "deploy/prometheus/alerts.yaml"), "utf8");
for (const name of new Set([...rules.matchAll(/\btollgate_[a-z0-9_]+/g)].map((m) => m[0]))) {
  if (!exported.has(name)) {
    failed = true;
    console.log(`deploy/prometheus/alerts.yaml: a rule queries ${name}, which no service exports`);
  }
}
process.exitCode = failed ? 1 : 0;
