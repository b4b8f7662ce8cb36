// `pnpm test:deploy`: builds both images and runs them as a fleet, the way an operator would.
//   1. builds tollgate/control-plane and tollgate/gateway from deploy/Dockerfile (podman or docker)
//   2. runs a control plane container on the machine's Postgres ($DATABASE_URL, else
//      postgres://postgres@127.0.0.1:5432/test when it answers, in a schema of its own that is
//      dropped afterwards; embedded PGlite in the container's /data otherwise)
//   3. enrolls and runs two gateway containers (read-only root filesystem) against a fake
//      OpenAI upstream served by this script; the control plane and the second gateway read
//      their secrets from mounted files (NAME_FILE)
//   4. creates a key through the admin API and calls through each gateway with the `openai` client
//   5. stops the control plane container: both gateways keep serving from their SQLite cache
//   6. checks image size, non-root processes, /data ownership, health checks, labels
// Containers use the host network (ports chosen free) and are removed at the end, pass or fail.
// Not part of `pnpm test` (it needs a container engine and minutes on a cold cache); CI runs it
// as its own step.
// TOLLGATE_IMAGE_TAG names the images (default `test`); TOLLGATE_IMAGE_NO_CACHE=1 builds every layer.
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import pg from "pg";
import { kubePlaySmoke } from "./kube-play.mjs";
import {
  UPSTREAM_KEY,
  assert,
  containerEngine,
  freePorts,
  getJson,
  log,
  printSummary,
  run,
  startFakeOpenAi,
  step,
  waitFor,
} from "./lib.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const runId = `${process.pid}-${randomBytes(3).toString("hex")}`;
const TAG = process.env.TOLLGATE_IMAGE_TAG ?? "test";
const images = {
  "control-plane": `localhost/tollgate/control-plane:${TAG}`,
  gateway: `localhost/tollgate/gateway:${TAG}`,
};
/** What each image may add to its base (the app, its production dependencies): a regression guard. */
const MAX_APP_BYTES = { "control-plane": 90e6, gateway: 90e6 };
const BASE_IMAGE = "docker.io/library/node:24-bookworm-slim";

const containers = [];
const cleanups = [];
let engine;

async function main() {
  engine = await containerEngine();
  log(`container engine: ${engine}; run ${runId}`);
  const revision =
    (await run("git", ["-C", root, "rev-parse", "HEAD"], { allowFail: true })).stdout.trim() || "unknown";

  await step("build images", async () => {
    for (const target of ["control-plane", "gateway"]) {
      const args = [
        "build",
        "-f",
        "deploy/Dockerfile",
        "--target",
        target,
        "-t",
        images[target],
        "--build-arg",
        `REVISION=${revision}`,
        // Also as --label: buildah may reuse a cached LABEL layer although the build arg changed.
        "--label",
        `org.opencontainers.image.revision=${revision}`,
      ];
      if (engine === "podman") args.push("--format", "docker"); // OCI format would drop HEALTHCHECK
      // TOLLGATE_IMAGE_NO_CACHE=1: every layer rebuilt, as on a fresh CI machine (the base image stays).
      if (process.env.TOLLGATE_IMAGE_NO_CACHE === "1") args.push("--no-cache");
      args.push(root);
      const started = performance.now();
      const { stdout, stderr } = await run(engine, args);
      const cached = ((stdout + stderr).match(/Using cache|CACHED/g) ?? []).length;
      log(`  ${target}: ${((performance.now() - started) / 1000).toFixed(1)} s (${cached} cached steps)`);
    }
  });

  const [cpPort, cpGrpc, gw1Port, gw1Status, gw2Port, gw2Status] = await freePorts(6);
  const masterKey = randomBytes(24).toString("hex");
  const upstream = await startFakeOpenAi();
  cleanups.push(() => upstream.stop());
  const db = await chooseDatabase();

  const cpName = `tollgate-deploy-cp-${runId}`;
  await step(`control plane container (${db.label})`, async () => {
    // The master key as a mounted secret file (PROXY_MASTER_KEY_FILE), as Compose and the chart can hand it over.
    const env = {
      PROXY_MASTER_KEY_FILE: "/run/secrets/master_key",
      PORT: cpPort,
      GRPC_PORT: cpGrpc,
      HOST: "127.0.0.1",
      ...db.env,
    };
    await startContainer(cpName, images["control-plane"], env, secretMounts({ master_key: masterKey }));
    await waitFor(
      "control plane /readyz",
      async () => (await getJson(`http://127.0.0.1:${cpPort}/readyz`)).status === 200,
      { timeoutMs: 90_000 },
    );
  });

  const admin = (path, body) =>
    getJson(`http://127.0.0.1:${cpPort}${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { authorization: `Bearer ${masterKey}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  const gateways = [
    { name: `deploy-gw-1-${runId}`, port: gw1Port, status: gw1Status },
    { name: `deploy-gw-2-${runId}`, port: gw2Port, status: gw2Status },
  ];
  await step("two gateway containers (read-only root filesystem)", async () => {
    for (const gw of gateways) {
      const token = await admin("/internal/gateway-tokens", { name: gw.name });
      assert(
        token.status === 201 || token.status === 200,
        `gateway token: ${token.status} ${JSON.stringify(token.body)}`,
      );
      // The second gateway takes its secrets from files (GATEWAY_TOKEN_FILE, OPENAI_API_KEY_FILE).
      const asFiles = gw === gateways[1];
      const secrets = { gateway_token: token.body.token, openai_api_key: UPSTREAM_KEY };
      await startContainer(
        `tollgate-${gw.name}`,
        images.gateway,
        {
          ...(asFiles
            ? { GATEWAY_TOKEN_FILE: "/run/secrets/gateway_token", OPENAI_API_KEY_FILE: "/run/secrets/openai_api_key" }
            : { GATEWAY_TOKEN: secrets.gateway_token, OPENAI_API_KEY: secrets.openai_api_key }),
          GATEWAY_NAME: gw.name,
          CONTROL_PLANE_URL: `http://127.0.0.1:${cpGrpc}`,
          HOST: "127.0.0.1",
          PORT: gw.port,
          STATUS_PORT: gw.status,
          OPENAI_BASE_URL: upstream.baseUrl,
        },
        ["--read-only", "--tmpfs", "/tmp", ...(asFiles ? secretMounts(secrets) : [])],
      );
    }
    for (const gw of gateways) {
      await waitFor(`${gw.name} /readyz connected`, async () => {
        const r = await getJson(`http://127.0.0.1:${gw.status}/readyz`);
        return r.status === 200 && r.body.connected === true;
      });
    }
  });

  const key = await step("create a key through the admin API (waits for both gateways)", async () => {
    const team = await admin("/internal/teams", {
      name: `deploy-${runId}`,
      tpm_limit: 200000,
      daily_token_limit: 5000000,
    });
    assert(team.status === 201, `team: ${team.status} ${JSON.stringify(team.body)}`);
    const user = await admin("/internal/users", { external_id: `deploy-${runId}@example.com`, team_id: team.body.id });
    assert(user.status === 201, `user: ${user.status} ${JSON.stringify(user.body)}`);
    const created = await admin("/internal/api-keys?wait_for_gateways=30s", {
      name: "deploy-test",
      user_id: user.body.id,
    });
    assert(created.status === 201, `key: ${created.status} ${JSON.stringify(created.body)}`);
    const sync = created.body.sync;
    assert(
      sync?.complete === true && sync.confirmed.length === 2,
      `both gateways confirm the key's revision: ${JSON.stringify(sync)}`,
    );
    return created.body.key;
  });

  const callEach = async (label) => {
    for (const gw of gateways) {
      const client = new OpenAI({
        apiKey: key,
        baseURL: `http://127.0.0.1:${gw.port}/v1`,
        maxRetries: 0,
        timeout: 10_000,
      });
      const answer = await client.chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: `${label} via ${gw.name}` }],
      });
      assert(
        answer.choices[0]?.message.content === `echo: ${label} via ${gw.name}`,
        `answer through ${gw.name}: ${JSON.stringify(answer.choices)}`,
      );
      assert(answer.usage?.total_tokens === 14, `usage through ${gw.name}`);
      const stream = await client.chat.completions.create({
        model: "gpt-4o-mini",
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: "user", content: `${label} streamed` }],
      });
      let text = "";
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
      assert(text === `echo: ${label} streamed`, `streamed answer through ${gw.name}: ${JSON.stringify(text)}`);
      const refused = await new OpenAI({
        apiKey: "llmp_not-a-key",
        baseURL: `http://127.0.0.1:${gw.port}/v1`,
        maxRetries: 0,
      }).models
        .list()
        .then(
          () => null,
          (err) => err.status,
        );
      assert(refused === 401, `a bad key is refused by ${gw.name} (got ${refused})`);
    }
    const last = upstream.seen.at(-1);
    assert(
      last.authorization === `Bearer ${UPSTREAM_KEY}`,
      "the upstream sees the gateway's credential, never the client key",
    );
  };

  await step("openai client through each gateway (plain and streamed)", () => callEach("hello"));

  await step("stop the control plane: the gateways keep serving", async () => {
    await run(engine, ["stop", "-t", "10", cpName]);
    for (const gw of gateways) {
      await waitFor(`${gw.name} notices the control plane is gone`, async () => {
        const r = await getJson(`http://127.0.0.1:${gw.status}/readyz`);
        return r.status === 200 && r.body.connected === false;
      });
    }
    await callEach("still serving");
    for (const gw of gateways) {
      const metrics = await fetch(`http://127.0.0.1:${gw.status}/metrics`).then((r) => r.text());
      const served = metrics
        .split("\n")
        .filter((l) => l.startsWith('tollgate_gateway_requests_total{route="chat_completions",status="200"}'));
      assert(
        served.length === 1 && Number(served[0].split(" ").at(-1)) === 4,
        `${gw.name} counted its 4 completions: ${served}`,
      );
      assert(/^tollgate_gateway_sync_connected 0$/m.test(metrics), `${gw.name} reports sync_connected 0`);
    }
  });

  await step("images: size, non-root, /data, health checks, labels", async () => {
    const baseSize =
      Number(
        (
          await run(engine, ["image", "inspect", "--format", "{{.Size}}", BASE_IMAGE], { allowFail: true })
        ).stdout.trim(),
      ) || 0;
    for (const [target, image] of Object.entries(images)) {
      const [info] = JSON.parse((await run(engine, ["image", "inspect", image])).stdout);
      const size = Number(info.Size);
      const app = size - baseSize;
      log(
        `  ${target}: ${(size / 1e6).toFixed(0)} MB (base ${(baseSize / 1e6).toFixed(0)} MB + app ${(app / 1e6).toFixed(1)} MB)`,
      );
      assert(
        baseSize === 0 || app <= MAX_APP_BYTES[target],
        `${target} adds at most ${MAX_APP_BYTES[target] / 1e6} MB to its base`,
      );
      assert(info.Config.User === "1000:1000", `${target} runs as 1000:1000 (got ${info.Config.User})`);
      assert(info.Config.Env.includes("NODE_OPTIONS=--enable-source-maps"), `${target} has source maps on`);
      assert((info.Config.Healthcheck ?? info.Healthcheck)?.Test?.length > 0, `${target} has a HEALTHCHECK`);
      const labels = info.Config.Labels ?? {};
      assert(
        labels["org.opencontainers.image.title"] === `tollgate-${target}` &&
          /^([0-9a-f]{40}|unknown)$/.test(labels["org.opencontainers.image.revision"] ?? ""),
        `${target} OCI labels`,
      );
      // buildah 1.28 reuses a fully cached image with its old labels: the revision is that of the build that made it.
      if (labels["org.opencontainers.image.revision"] !== revision)
        log(`  ${target}: cached image labelled ${labels["org.opencontainers.image.revision"]}`);
    }
    for (const gw of gateways) {
      const name = `tollgate-${gw.name}`;
      const status = (await run(engine, ["exec", name, "cat", "/proc/1/status"])).stdout;
      const uid = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
      assert(uid && uid[1] === "1000" && uid[2] === "1000", `${name}: PID 1 runs as uid 1000 (${uid?.[0]})`);
      const owner = (await run(engine, ["exec", name, "stat", "-c", "%u:%g", "/data", "/data/gateway.db"])).stdout
        .trim()
        .split("\n");
      assert(
        owner.every((o) => o === "1000:1000"),
        `${name}: /data and its database belong to 1000 (${owner})`,
      );
      const write = await run(engine, ["exec", name, "sh", "-c", "touch /app/x"], { allowFail: true });
      assert(write.code !== 0, `${name}: the root filesystem is read-only`);
      if (engine === "podman") await run(engine, ["healthcheck", "run", name]);
    }
  });

  if (engine === "podman") {
    await step("helm chart on podman kube play: control plane + gateway, one request", () =>
      kubePlaySmoke({ root, tag: TAG, runId, db, upstream, upstreamKey: UPSTREAM_KEY, cleanups }),
    );
  } else {
    log("kube play smoke test needs podman: not run with docker");
  }
}

async function chooseDatabase() {
  const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
  } catch {
    log("no Postgres answers: the control plane container uses embedded PGlite in its /data volume");
    return { label: "embedded PGlite", env: {} };
  }
  const schema = `deploy_${runId.replace(/\W/g, "_")}`;
  cleanups.push(async () => {
    for (const name of [schema, `${schema}_kp`]) {
      await client
        .query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`)
        .catch((err) => log(`could not drop schema ${name}: ${err.message}`));
    }
    await client.end();
  });
  const where = new URL(url);
  return {
    label: `Postgres ${where.host}${where.pathname}, schema ${schema}`,
    env: { DATABASE_URL: url, DATABASE_SCHEMA: schema },
  };
}

/** Each secret in a file of its own, mounted read-only at /run/secrets/<name>: `-v` arguments. */
function secretMounts(secrets) {
  const dir = mkdtempSync(join(tmpdir(), "tollgate-deploy-secrets-"));
  chmodSync(dir, 0o755); // the container's uid 1000 reads them, as from a Kubernetes Secret volume
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return Object.entries(secrets).flatMap(([name, value]) => {
    const file = join(dir, name);
    writeFileSync(file, `${value}\n`, { mode: 0o444 });
    return ["-v", `${file}:/run/secrets/${name}:ro`];
  });
}

async function startContainer(name, image, env, extra = []) {
  const args = ["run", "-d", "--name", name, "--network", "host", ...extra];
  for (const [k, v] of Object.entries(env)) args.push("-e", `${k}=${v}`);
  containers.push(name);
  await run(engine, [...args, image]);
}

async function cleanup() {
  for (const name of containers.reverse()) {
    if (process.exitCode) {
      const logs = await run(engine, ["logs", "--tail", "30", name], { allowFail: true });
      process.stdout.write(`\n--- last log lines of ${name} ---\n${logs.stdout}${logs.stderr}`);
    }
    await run(engine, ["rm", "-f", "-v", name], { allowFail: true });
  }
  for (const fn of cleanups.reverse()) await fn();
}

try {
  await main();
} catch (err) {
  process.exitCode = 1;
  if (!/assertion failed|timed out|exited/.test(err?.message ?? "")) console.error(err);
} finally {
  await cleanup();
  const ok = printSummary("test:deploy summary");
  if (!ok) process.exitCode = 1;
  log(ok && !process.exitCode ? "test:deploy passed" : "test:deploy FAILED");
}
