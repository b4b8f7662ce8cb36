// Smoke test of the Helm chart on podman: renders deploy/helm/tollgate for one control plane and
// one gateway with the images test-deploy.mjs built, plays it with `podman kube play --network
// host`, and sends a request through the gateway. Podman plays Deployments but not StatefulSets,
// so the gateway's StatefulSet is played as a Deployment with the same pod template; the chart's
// Secret becomes a podman secret (podman resolves secretKeyRef against those). Host networking
// shares the machine's ports, so the fixed container ports are moved to free ones through the
// chart's `env` values (the later variable wins).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { parseAllDocuments, stringify } from "yaml";
import { assert, freePorts, getJson, log, run, waitFor } from "./lib.mjs";

async function findHelm() {
  for (const c of [process.env.HELM, "helm", join(homedir(), ".cache/k8s-tools/helm")].filter(Boolean)) {
    const r = await run(c, ["version", "--short"], { allowFail: true }).catch(() => null);
    if (r?.code === 0) return c;
  }
  return null;
}

/**
 * Plays the chart and calls through it. `db` holds DATABASE_URL/DATABASE_SCHEMA (or nothing: PGlite);
 * `upstream` is the fake OpenAI server; `admin` creates keys given the admin base URL and master key.
 */
export async function kubePlaySmoke({ root, tag, runId, db, upstream, upstreamKey, cleanups }) {
  const helm = await findHelm();
  if (!helm) throw new Error("helm not found (bash ../shared/tools/k8s-tools.sh): cannot render the chart");
  const [cpPort, cpGrpc, gwPort, gwStatus] = await freePorts(4);
  const masterKey = `kube-play-master-key-${runId}-0123456789abcdef`;
  const release = `kp${runId.replace(/\W/g, "").slice(-8)}`;
  const dir = mkdtempSync(join(tmpdir(), "tollgate-kube-play-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const values = {
    image: {
      registry: "localhost/",
      controlPlane: { repository: "tollgate/control-plane", tag },
      gateway: { repository: "tollgate/gateway", tag },
      pullPolicy: "Never",
    },
    secrets: { masterKey, databaseUrl: db.env.DATABASE_URL ?? "", openaiApiKey: upstreamKey },
    controlPlane: {
      replicas: 1,
      databaseSchema: db.env.DATABASE_SCHEMA ? `${db.env.DATABASE_SCHEMA}_kp` : "",
      env: { PORT: cpPort, GRPC_PORT: cpGrpc, HOST: "127.0.0.1" },
    },
    gateway: {
      replicas: 1,
      persistence: { enabled: false },
      controlPlaneUrl: `http://127.0.0.1:${cpGrpc}`,
      env: { PORT: gwPort, STATUS_PORT: gwStatus, HOST: "127.0.0.1", OPENAI_BASE_URL: upstream.baseUrl },
    },
    networkPolicy: { enabled: false },
  };
  writeFileSync(join(dir, "values.yaml"), stringify(values));
  const render = async (extra) => {
    const { stdout } = await run(helm, [
      "template",
      release,
      join(root, "deploy/helm/tollgate"),
      "-f",
      join(dir, "values.yaml"),
      ...extra,
    ]);
    return parseAllDocuments(stdout)
      .map((d) => d.toJS())
      .filter(Boolean);
  };
  const podman = (args, opts) => run("podman", args, opts);

  // The control plane first: a gateway token comes from its admin API.
  const docs = await render([]);
  const secret = docs.find((d) => d.kind === "Secret");
  // podman 4.3 cannot read a Kubernetes Secret back from a podman secret here ("illegal base64"):
  // the played copies get the Secret's values inline instead (test:chart checks the secretKeyRefs).
  let secretData = { ...secret.stringData };
  // Host networking: podman refuses containerPorts (port mappings), and the probes name those ports.
  const forHostNetwork = (m) => {
    const copy = structuredClone(m);
    for (const c of copy.spec.template.spec.containers) {
      c.env = c.env.flatMap((e) => {
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref) return [e];
        return secretData[ref.key] === undefined ? [] : [{ name: e.name, value: String(secretData[ref.key]) }];
      });
      delete c.ports;
      delete c.startupProbe;
      delete c.livenessProbe;
      delete c.readinessProbe;
    }
    return copy;
  };
  const play = async (name, manifests) => {
    manifests = manifests.map(forHostNetwork);
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, manifests.map((m) => stringify(m)).join("---\n"));
    cleanups.push(() => podman(["kube", "down", file], { allowFail: true }));
    await podman(["kube", "play", "--network", "host", file]);
  };
  const cp = docs.find((d) => d.kind === "Deployment");
  await play("control-plane", [cp]);
  await waitFor(
    "played control plane /readyz",
    async () => (await getJson(`http://127.0.0.1:${cpPort}/readyz`)).status === 200,
    { timeoutMs: 90_000 },
  );
  log(`  played ${cp.metadata.name} (podman kube play)`);

  const admin = (path, body) =>
    getJson(`http://127.0.0.1:${cpPort}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${masterKey}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const token = await admin("/internal/gateway-tokens", { name: `kube-play-${runId}` });
  assert(token.status === 201, `gateway token from the played control plane: ${token.status}`);
  secretData = { ...secretData, gatewayToken: token.body.token };

  const sts = docs.find((d) => d.kind === "StatefulSet");
  const gwDeployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: sts.metadata,
    spec: { replicas: 1, selector: sts.spec.selector, template: sts.spec.template },
  };
  await play("gateway", [gwDeployment]);
  await waitFor(
    "played gateway connected",
    async () => {
      const r = await getJson(`http://127.0.0.1:${gwStatus}/readyz`);
      return r.status === 200 && r.body.connected === true;
    },
    { timeoutMs: 90_000 },
  );
  log(`  played ${sts.metadata.name} (as a Deployment)`);

  const user = await admin("/internal/users", { external_id: `kube-play-${runId}@example.com` });
  assert(user.status === 201, `user: ${user.status} ${JSON.stringify(user.body)}`);
  const key = await admin("/internal/api-keys?wait_for_gateways=30s", { name: "kube-play", user_id: user.body.id });
  assert(
    key.status === 201 && key.body.sync?.complete === true,
    `key synced to the played gateway: ${JSON.stringify(key.body.sync)}`,
  );
  const client = new OpenAI({
    apiKey: key.body.key,
    baseURL: `http://127.0.0.1:${gwPort}/v1`,
    maxRetries: 0,
    timeout: 10_000,
  });
  const answer = await client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "via helm" }],
  });
  assert(
    answer.choices[0]?.message.content === "echo: via helm",
    `answer through the played gateway: ${JSON.stringify(answer.choices)}`,
  );
  const prefix = `${release}-tollgate-`;
  const uid = (await podman(["ps", "--format", "{{.Names}}"])).stdout
    .trim()
    .split("\n")
    .filter((n) => n.startsWith(prefix) && !n.endsWith("-infra"));
  assert(uid.length === 2, `two played containers (${uid})`);
  for (const name of uid) {
    const status = (await podman(["exec", name, "cat", "/proc/1/status"])).stdout;
    assert(/^Uid:\s+1000\s/m.test(status), `${name} runs as uid 1000 under the chart's securityContext`);
  }
}
