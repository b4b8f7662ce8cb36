// Validates deploy/grafana/*.json against Grafana's dashboard schema (deploy/grafana/schema/, see
// its $comment for provenance) and checks every panel query names a metric that is either
// exported today or listed as planned. Part of `pnpm test:chart`.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const dir = join(root, "deploy/grafana");
const schema = JSON.parse(readFileSync(join(dir, "schema/dashboard.schema.json"), "utf8"));
const ajv = new Ajv({ strict: false, allErrors: true });
const validate = ajv.compile({ ...schema, $ref: "#/definitions/Dashboard" });

/** Metrics the dashboard and alerts use that the services do not export yet (issue 18). */
export const PLANNED_METRICS = [
  "tollgate_gateway_tokens_total",
  "tollgate_gateway_cost_usd_total",
  "tollgate_gateway_upstream_duration_seconds_bucket",
  "tollgate_gateway_time_to_first_token_seconds_bucket",
  "tollgate_gateway_requests_in_flight",
  "tollgate_gateway_upstream_responses_total",
  "tollgate_build_info",
];

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
const missing = new Set();
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
          if (PLANNED_METRICS.includes(name)) missing.add(name);
          else
            (failed = true), console.log(`${f}: panel "${p.title}" queries ${name}, which no service exports or plans`);
        }
      }
    }
  }
  console.log(`${f}: ${dash.panels.length} panels, valid against Grafana's dashboard schema: ${!failed}`);
}
if (missing.size)
  console.log(
    `planned metrics the dashboard already charts (empty until the services export them): ${[...missing].join(", ")}`,
  );
process.exitCode = failed ? 1 : 0;
