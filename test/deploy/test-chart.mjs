// `pnpm test:chart`: checks deploy/helm/tollgate without a cluster.
//   1. helm lint with each value set of deploy/helm/tollgate/ci/
//   2. renders each value set and validates every manifest against the Kubernetes JSON schemas
//      (kubernetes-models: the upstream OpenAPI schemas compiled as validators, offline) and the
//      prometheus-operator CRD schemas; a deliberately broken manifest must fail validation
//   3. asserts what the chart promises: non-root read-only pods, probes, secret wiring (seed 000's
//      Google SSO settings included), existingSecret, secrets as files, PDBs, NetworkPolicies
//   4. refusals: a short master key, several control planes without Postgres, values the schema refuses
//   5. files/alerts.yaml is the same as deploy/prometheus/alerts.yaml
// helm comes from $HELM, PATH, or ~/.cache/k8s-tools (bash ../shared/tools/k8s-tools.sh).
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { assert, log, printSummary, run, step } from "./lib.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const chart = join(root, "deploy/helm/tollgate");
const ciDir = join(chart, "ci");

async function findHelm() {
  const candidates = [process.env.HELM, "helm", join(homedir(), ".cache/k8s-tools/helm")].filter(Boolean);
  for (const c of candidates) {
    const r = await run(c, ["version", "--short"], { allowFail: true }).catch(() => null);
    if (r?.code === 0) return { helm: c, version: r.stdout.trim() };
  }
  throw new Error("helm not found: set HELM, put helm on PATH, or run bash ../shared/tools/k8s-tools.sh");
}

/** The validator class of a manifest's apiVersion/kind, from kubernetes-models. */
async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const spec =
    group === "monitoring.coreos.com"
      ? `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`
      : `kubernetes-models/${group ? `${group}/` : ""}${version}/${kind}`;
  const mod = await import(spec);
  return mod[kind];
}

async function validate(doc) {
  const Model = await modelFor(doc.apiVersion, doc.kind);
  new Model(doc).validate();
}

function render(helm, valuesFile, extra = []) {
  return run(helm, [
    "template",
    "tg",
    chart,
    "--namespace",
    "tollgate",
    ...(valuesFile ? ["-f", valuesFile] : []),
    ...extra,
  ]);
}

function podSpecs(docs) {
  return docs
    .filter((d) => ["Deployment", "StatefulSet"].includes(d.kind))
    .map((d) => ({ name: d.metadata.name, kind: d.kind, spec: d.spec.template.spec, owner: d }));
}

async function main() {
  const { helm, version } = await findHelm();
  log(`helm ${version} (${helm})`);
  const valueSets = readdirSync(ciDir)
    .filter((f) => f.endsWith(".yaml"))
    .sort();
  const rendered = {};

  await step(`helm lint (${valueSets.length} value sets)`, async () => {
    for (const f of valueSets) await run(helm, ["lint", "--strict", chart, "-f", join(ciDir, f)]);
  });

  await step("render and validate against the Kubernetes schemas", async () => {
    let count = 0;
    for (const f of valueSets) {
      const { stdout } = await render(helm, join(ciDir, f));
      const docs = parseAllDocuments(stdout)
        .map((d) => d.toJS())
        .filter(Boolean);
      rendered[f] = docs;
      for (const doc of docs) {
        try {
          await validate(doc);
        } catch (err) {
          throw new Error(`${f}: ${doc.kind} ${doc.metadata?.name}: ${err.message}`);
        }
        count++;
      }
      log(`  ${f}: ${docs.map((d) => d.kind).join(", ")}`);
    }
    // The validator must catch a broken manifest, or the check above proves nothing.
    const broken = structuredClone(podSpecs(rendered["production-values.yaml"])[0].owner);
    broken.spec.template.spec.containers[0].ports[0].containerPort = "http";
    const refused = await validate(broken).then(
      () => false,
      () => true,
    );
    assert(refused, "a Deployment with a string containerPort fails validation");
    log(`  ${count} manifests valid; a broken one is refused`);
  });

  await step("pods: non-root, read-only root, probes, resources", () => {
    for (const [f, docs] of Object.entries(rendered)) {
      for (const { name, spec } of podSpecs(docs)) {
        assert(
          spec.securityContext.runAsNonRoot === true && spec.securityContext.runAsUser === 1000,
          `${f} ${name}: runs as uid 1000, non-root`,
        );
        assert(spec.automountServiceAccountToken === false, `${f} ${name}: no service account token`);
        for (const c of spec.containers) {
          assert(
            c.securityContext.readOnlyRootFilesystem === true && c.securityContext.allowPrivilegeEscalation === false,
            `${f} ${name}: read-only, no privilege escalation`,
          );
          assert(c.securityContext.capabilities.drop.includes("ALL"), `${f} ${name}: drops all capabilities`);
          assert(
            c.livenessProbe?.httpGet.path === "/healthz" && c.readinessProbe?.httpGet.path === "/readyz",
            `${f} ${name}: probes on /healthz and /readyz`,
          );
          assert(c.resources?.requests?.memory, `${f} ${name}: memory request`);
          assert(
            c.volumeMounts.some((m) => m.mountPath === "/data") && c.volumeMounts.some((m) => m.mountPath === "/tmp"),
            `${f} ${name}: writable /data and /tmp`,
          );
        }
      }
    }
  });

  await step("secrets, SSO settings, existingSecret, PDBs, NetworkPolicies, monitoring", () => {
    const prod = rendered["production-values.yaml"];
    const secret = prod.find((d) => d.kind === "Secret");
    for (const k of ["masterKey", "databaseUrl", "gatewayToken", "googleClientId", "googleClientSecret", "authBaseUrl"])
      assert(secret.stringData[k], `Secret holds ${k}`);
    const cp = prod.find((d) => d.kind === "Deployment");
    assert(cp.spec.replicas === 3, "control plane replicas from values");
    const env = Object.fromEntries(cp.spec.template.spec.containers[0].env.map((e) => [e.name, e]));
    for (const [name, key] of [
      ["PROXY_MASTER_KEY", "masterKey"],
      ["DATABASE_URL", "databaseUrl"],
      ["GOOGLE_CLIENT_ID", "googleClientId"],
      ["GOOGLE_CLIENT_SECRET", "googleClientSecret"],
      ["AUTH_BASE_URL", "authBaseUrl"],
    ]) {
      assert(env[name]?.valueFrom?.secretKeyRef?.key === key, `control plane ${name} from the Secret's ${key}`);
    }
    assert(!JSON.stringify(cp).includes("GOCSPX-example"), "no secret value inlined in the Deployment");
    assert(env.TRUSTED_PROXIES?.value === "10.0.0.0/8", "control plane trusted proxies");
    const gw = prod.find((d) => d.kind === "StatefulSet");
    const gwEnv = Object.fromEntries(gw.spec.template.spec.containers[0].env.map((e) => [e.name, e]));
    assert(
      gwEnv.TRUSTED_PROXIES.value === "10.0.0.0/8" && gwEnv.PROVIDERS_FILE.value === "/etc/tollgate/providers.yaml",
      "gateway trusted proxies and providers file",
    );
    assert(
      gwEnv.CONTROL_PLANE_URL.value === "http://tg-tollgate-control-plane:50051",
      "gateway dials the control-plane Service",
    );
    assert(gw.spec.volumeClaimTemplates[0].spec.storageClassName === "fast-ssd", "gateway PVC per pod");
    assert(prod.filter((d) => d.kind === "PodDisruptionBudget").length === 2, "a PDB per component");
    assert(prod.filter((d) => d.kind === "NetworkPolicy").length === 2, "a NetworkPolicy per component");
    assert(
      prod.some((d) => d.kind === "PrometheusRule") && prod.filter((d) => d.kind === "ServiceMonitor").length === 2,
      "monitoring objects",
    );

    const ext = rendered["existing-secret-values.yaml"];
    assert(!ext.some((d) => d.kind === "Secret"), "existingSecret: the chart creates no Secret");
    const extEnv = ext.find((d) => d.kind === "Deployment").spec.template.spec.containers[0].env;
    assert(
      extEnv.every((e) => !e.valueFrom?.secretKeyRef || e.valueFrom.secretKeyRef.name === "tollgate-prod"),
      "existingSecret is referenced",
    );
    assert(
      !ext.some((d) => ["NetworkPolicy", "PodDisruptionBudget"].includes(d.kind)),
      "networkPolicy and pdb can be turned off",
    );

    const min = rendered["minimal-values.yaml"];
    assert(
      min.find((d) => d.kind === "StatefulSet").spec.template.spec.volumes.some((v) => v.name === "data" && v.emptyDir),
      "persistence off: emptyDir",
    );
    assert(
      !rendered["control-plane-only-values.yaml"].some((d) => d.kind === "StatefulSet"),
      "gateway.enabled=false renders no gateway",
    );
  });

  await step("secrets as files (secrets.mountAsFiles): NAME_FILE, each pod mounts only its keys", () => {
    const docs = rendered["secret-files-values.yaml"];
    const pod = (kind) => docs.find((d) => d.kind === kind).spec.template.spec;
    for (const [kind, files, keys] of [
      ["Deployment", ["PROXY_MASTER_KEY_FILE", "DATABASE_URL_FILE"], ["masterKey", "databaseUrl"]],
      ["StatefulSet", ["GATEWAY_TOKEN_FILE", "ANTHROPIC_API_KEY_FILE"], ["gatewayToken", "anthropicApiKey"]],
    ]) {
      const spec = pod(kind);
      const env = spec.containers[0].env;
      const byName = Object.fromEntries(env.map((e) => [e.name, e]));
      for (const [i, name] of files.entries()) {
        assert(byName[name]?.value === `/run/secrets/tollgate/${keys[i]}`, `${kind}: ${name} names the mounted key`);
        assert(!byName[name.replace(/_FILE$/, "")], `${kind}: no ${name.replace(/_FILE$/, "")} beside ${name}`);
      }
      const volume = spec.volumes.find((v) => v.name === "secrets");
      assert(
        volume?.secret.secretName === "tollgate-prod" &&
          JSON.stringify(volume.secret.items.map((i) => i.key)) === JSON.stringify(keys) &&
          volume.secret.defaultMode === 0o440,
        `${kind}: mounts ${keys.join(", ")} only, mode 0440 (got ${JSON.stringify(volume?.secret)})`,
      );
      const mount = spec.containers[0].volumeMounts.find((m) => m.name === "secrets");
      assert(mount?.mountPath === "/run/secrets/tollgate" && mount.readOnly === true, `${kind}: read-only mount`);
      // Keys not listed in existingSecretKeys are left out rather than pointing at missing files.
      assert(!env.some((e) => /OPENAI_API_KEY|GOOGLE_CLIENT_SECRET/.test(e.name)), `${kind}: absent keys left out`);
    }
  });

  await step("refused values", async () => {
    const refusals = [
      [["--set", "secrets.masterKey=short"], /at least 32 characters/],
      [["--set", "secrets.masterKey=0123456789abcdef0123456789abcdef"], /shared Postgres/],
      [["--set", "secrets.existingSecret=x", "--set", "gateway.replicas=-1"], /minimum/],
      [["--set", "secrets.existingSecret=x", "--set", "gateway.replica=2"], /additional properties|not allowed/i],
      [["--set", "secrets.existingSecret=x", "--set", "secrets.authBaseUrl=proxy.internal"], /pattern|does not match/i],
      [["--set", "secrets.existingSecret=x", "--set", "secrets.mountAsFiles=true"], /existingSecretKeys/],
    ];
    for (const [args, pattern] of refusals) {
      const r = await run(helm, ["template", "tg", chart, ...args], { allowFail: true });
      assert(
        r.code !== 0 && pattern.test(r.stderr),
        `helm template ${args.join(" ")} is refused with ${pattern} (got ${r.code}: ${r.stderr.trim().split("\n").at(-1)})`,
      );
    }
  });

  await step("chart alert rules match deploy/prometheus/alerts.yaml", () => {
    const a = readFileSync(join(chart, "files/alerts.yaml"), "utf8");
    const b = readFileSync(join(root, "deploy/prometheus/alerts.yaml"), "utf8");
    assert(
      a === b,
      "deploy/helm/tollgate/files/alerts.yaml differs: cp deploy/prometheus/alerts.yaml deploy/helm/tollgate/files/",
    );
  });
}

try {
  if (!existsSync(chart)) throw new Error(`no chart at ${chart}`);
  await main();
} catch (err) {
  process.exitCode = 1;
  if (!/assertion failed|exited/.test(err?.message ?? "")) console.error(err);
} finally {
  const ok = printSummary("test:chart summary");
  if (!ok) process.exitCode = 1;
  log(ok && !process.exitCode ? "test:chart passed" : "test:chart FAILED");
}
