import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { migrate, migrations } from "../db/migrations.js";
import { KeyStatus } from "@tollgate/shared";
import { createGateway, type Gateway, type GatewayConfig } from "../index.js";
import type { Clock } from "../clock.js";
import {
  capturedLogger,
  deleteChange,
  endpoints,
  eventually,
  FakeControlPlane,
  makeKey,
  makeSigningKey,
  manualClock,
  mintToken,
  rotateKey,
  signingKeyChange,
  tempDir,
  type TestKey,
  upsertChange,
  withFields,
} from "@tollgate/testkit";
import { testConfig } from "../../test/test-config.js";

// Response bodies are asserted field by field; their static type adds nothing.
const json = (res: Response): Promise<any> => res.json();

interface Started {
  gw: Gateway;
  api: ReturnType<typeof endpoints>;
  dataDir: string;
}

/** Gateways, control planes and directories to clean up after each suite. */
function lifecycle() {
  const cleanups: Array<() => Promise<void> | void> = [];
  return {
    add: (c: () => Promise<void> | void) => cleanups.push(c),
    async run() {
      for (const c of cleanups.splice(0).reverse()) await c();
    },
    async gateway(
      cp: FakeControlPlane,
      opts: { config?: Partial<GatewayConfig>; clock?: Clock; dataDir?: string; waitReady?: boolean } = {},
    ): Promise<Started> {
      let dataDir = opts.dataDir;
      if (!dataDir) {
        const dir = tempDir();
        cleanups.push(() => dir.remove());
        dataDir = dir.path;
      }
      const gw = createGateway(testConfig(dataDir, cp.url, cp.token, { logLevel: "silent", ...opts.config }), {
        logger: capturedLogger().logger,
        sync: { baseDelayMs: 10, maxDelayMs: 50 },
        ...(opts.clock ? { clock: opts.clock } : {}),
      });
      const api = endpoints(await gw.start());
      cleanups.push(() => gw.stop());
      if (opts.waitReady !== false)
        await eventually(() => (gw.context.syncState.ready && cp.openStreams > 0 ? true : undefined));
      return { gw, api, dataDir };
    },
  };
}

function chat(base: string, auth: string, model: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${auth}`, "content-type": "application/json", ...headers },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
  });
}

const models = (base: string, auth: string) =>
  fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${auth}` } });

/** The request-log row of a response, once written. */
function loggedRow(gw: Gateway, res: Response) {
  const id = res.headers.get("x-request-id");
  return eventually(async () => {
    await gw.context.logWriter.flush();
    return gw.context.db.requestLog.list().find((r) => r.requestId === id);
  });
}

async function auditRows(gw: Gateway) {
  await gw.context.logWriter.flush();
  return gw.context.db.audit.list();
}

describe("key scopes on the client API", () => {
  const life = lifecycle();
  const scopedModels = makeKey({
    allowedModels: ["gpt-4o*", "claude-3-5-sonnet-latest"],
    metadata: { team: "backend", env: "production" },
  });
  const onlyOpenai = makeKey({ allowedProviders: ["openai", "anthropic"] });
  const onlyMock = makeKey({ allowedProviders: ["mock"] });
  const fromTenSlash8 = makeKey({ ipAllowlist: ["10.0.0.0/8", "2001:db8::/32"] });
  const fromLoopback = makeKey({ ipAllowlist: ["127.0.0.1", "::1"] });
  const mockModels = makeKey({ allowedModels: ["mock-*"] });
  const unscoped = makeKey();
  const all = [scopedModels, onlyOpenai, onlyMock, fromTenSlash8, fromLoopback, mockModels, unscoped];
  const cp = new FakeControlPlane(
    all.map((k) => k.upsert),
    1,
  );
  let direct: Started;
  let behindProxy: Started;

  beforeAll(async () => {
    await cp.start();
    life.add(() => cp.stop());
    direct = await life.gateway(cp);
    behindProxy = await life.gateway(cp, { config: { trustedProxies: ["127.0.0.1", "192.168.0.0/16"] } });
  });
  afterAll(() => life.run());

  it("refuses a model outside allowed_models with 403 naming the rule, and logs and counts it", async () => {
    const res = await chat(direct.api.base, scopedModels.secret, "gpt-4");
    expect(res.status).toBe(403);
    expect(await json(res)).toEqual({
      error: {
        message: "This API key may not use model 'gpt-4' (allowed_models: gpt-4o*, claude-3-5-sonnet-latest).",
        type: "invalid_request_error",
        param: "model",
        code: "model_not_allowed",
      },
    });
    expect(await loggedRow(direct.gw, res)).toMatchObject({
      status: 403,
      keyId: scopedModels.upsert.id,
      model: "gpt-4",
      error: "model_not_allowed",
      metadata: '{"team":"backend","env":"production"}',
      ephemeral: false,
    });
    const audit = (await auditRows(direct.gw)).filter((r) => r.event === "policy_denied");
    expect(audit.at(-1)).toMatchObject({
      keyId: scopedModels.upsert.id,
      detail: {
        rule: "model",
        code: "model_not_allowed",
        key_id: scopedModels.upsert.id,
        model: "gpt-4",
        ip: "127.0.0.1",
        route: "chat_completions",
      },
    });
    expect(JSON.stringify(audit)).not.toContain(scopedModels.secret);
    expect(await direct.api.metrics()).toMatch(/^tollgate_gateway_policy_denials_total\{rule="model"\} 1$/m);
  });

  it("serves allowed models, by glob and by exact name, with the key's metadata in the request log", async () => {
    for (const model of ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-latest"]) {
      const res = await chat(direct.api.base, scopedModels.secret, model);
      expect(res.status).toBe(200);
      expect(await loggedRow(direct.gw, res)).toMatchObject({
        status: 200,
        model,
        metadata: '{"team":"backend","env":"production"}',
      });
    }
    const plain = await chat(direct.api.base, unscoped.secret, "anything");
    expect(plain.status).toBe(200);
    expect(await loggedRow(direct.gw, plain)).toMatchObject({ metadata: null });
  });

  it("refuses a provider outside allowed_providers on every route", async () => {
    for (const res of [
      await chat(direct.api.base, onlyOpenai.secret, "gpt-4o"),
      await models(direct.api.base, onlyOpenai.secret),
    ]) {
      expect(res.status).toBe(403);
      expect(await json(res)).toEqual({
        error: {
          message: "This API key may not use provider 'mock' (allowed_providers: openai, anthropic).",
          type: "invalid_request_error",
          param: null,
          code: "provider_not_allowed",
        },
      });
      expect(await loggedRow(direct.gw, res)).toMatchObject({
        status: 403,
        keyId: onlyOpenai.upsert.id,
        error: "provider_not_allowed",
      });
    }
    expect((await chat(direct.api.base, onlyMock.secret, "gpt-4o")).status).toBe(200);
    expect(await direct.api.metrics()).toMatch(/^tollgate_gateway_policy_denials_total\{rule="provider"\} 2$/m);
    expect(
      (await auditRows(direct.gw)).filter((r) => r.event === "policy_denied" && r.keyId === onlyOpenai.upsert.id),
    ).toHaveLength(2);
  });

  it("lists only the models the key may use", async () => {
    expect((await json(await models(direct.api.base, unscoped.secret))).data.map((m: { id: string }) => m.id)).toEqual([
      "mock-gpt",
    ]);
    expect(
      (await json(await models(direct.api.base, mockModels.secret))).data.map((m: { id: string }) => m.id),
    ).toEqual(["mock-gpt"]);
    const narrowed = await models(direct.api.base, scopedModels.secret);
    expect(narrowed.status).toBe(200);
    expect(await json(narrowed)).toEqual({ object: "list", data: [] });
  });

  it("refuses an address outside ip_allowlist, and serves one inside", async () => {
    const res = await chat(direct.api.base, fromTenSlash8.secret, "m");
    expect(res.status).toBe(403);
    expect(await json(res)).toEqual({
      error: {
        message: "Requests from 127.0.0.1 are not allowed for this API key (ip_allowlist).",
        type: "invalid_request_error",
        param: null,
        code: "ip_not_allowed",
      },
    });
    expect((await models(direct.api.base, fromTenSlash8.secret)).status).toBe(403);
    expect((await chat(direct.api.base, fromLoopback.secret, "m")).status).toBe(200);
    expect(
      (await auditRows(direct.gw))
        .filter((r) => r.event === "policy_denied" && r.keyId === fromTenSlash8.upsert.id)
        .at(-1),
    ).toMatchObject({
      detail: { rule: "ip", ip: "127.0.0.1", route: "models" },
    });
    expect(await direct.api.metrics()).toMatch(/^tollgate_gateway_policy_denials_total\{rule="ip"\} 2$/m);
  });

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy", async () => {
    const spoofed = await chat(direct.api.base, fromTenSlash8.secret, "m", { "x-forwarded-for": "10.1.2.3" });
    expect(spoofed.status).toBe(403);
    expect((await json(spoofed)).error.message).toContain("Requests from 127.0.0.1 ");
  });

  it("behind a trusted proxy, takes the rightmost address that is not a trusted proxy", async () => {
    const base = behindProxy.api.base;
    expect((await chat(base, fromTenSlash8.secret, "m", { "x-forwarded-for": "10.1.2.3" })).status).toBe(200);
    // Through two trusted hops.
    expect((await chat(base, fromTenSlash8.secret, "m", { "x-forwarded-for": "10.1.2.3, 192.168.7.7" })).status).toBe(
      200,
    );
    // The client wrote 10.1.2.3 itself; the proxy appended its real address.
    const spoofed = await chat(base, fromTenSlash8.secret, "m", { "x-forwarded-for": "10.1.2.3, 203.0.113.9" });
    expect(spoofed.status).toBe(403);
    expect((await json(spoofed)).error.message).toBe(
      "Requests from 203.0.113.9 are not allowed for this API key (ip_allowlist).",
    );
    // Without the header the proxy itself is the client.
    expect((await chat(base, fromLoopback.secret, "m")).status).toBe(200);
    expect((await chat(base, fromLoopback.secret, "m", { "x-forwarded-for": "203.0.113.9" })).status).toBe(403);
  });
});

describe("rotation grace period on the client API", () => {
  const life = lifecycle();
  afterEach(() => life.run());

  it("serves both secrets until the previous one expires by the clock, then only the new", async () => {
    const clock = manualClock();
    const original = makeKey();
    const rotated = rotateKey(original, clock.now() + 60_000);
    const cp = new FakeControlPlane([rotated.upsert], 1);
    await cp.start();
    life.add(() => cp.stop());
    const { gw, api } = await life.gateway(cp, { clock });

    for (const secret of [original.secret, rotated.secret]) {
      const res = await chat(api.base, secret, "m");
      expect(res.status).toBe(200);
      expect(await loggedRow(gw, res)).toMatchObject({ keyId: original.upsert.id });
    }
    clock.advance(60_000);
    const old = await chat(api.base, original.secret, "m");
    expect(old.status).toBe(401);
    expect((await json(old)).error.message).toContain("was rotated: its previous secret stopped working at");
    expect((await chat(api.base, rotated.secret, "m")).status).toBe(200);
    expect(await api.metrics()).toMatch(/^tollgate_gateway_auth_failures_total\{reason="rotated"\} 1$/m);
  });

  it("ends the grace period early when the control plane syncs the key without a previous secret", async () => {
    const original = makeKey();
    const rotated = rotateKey(original, Date.now() + 3_600_000);
    const cp = new FakeControlPlane([rotated.upsert], 1);
    await cp.start();
    life.add(() => cp.stop());
    const { api } = await life.gateway(cp);
    expect((await chat(api.base, original.secret, "m")).status).toBe(200);
    cp.push([
      upsertChange(
        2,
        withFields(rotated.upsert, { previousKeyHash: new Uint8Array(0), previousKeyExpiresAt: undefined }),
      ),
    ]);
    await eventually(async () => ((await chat(api.base, original.secret, "m")).status === 401 ? true : undefined));
    expect((await chat(api.base, rotated.secret, "m")).status).toBe(200);
  });
});

describe("ephemeral tokens on the client API", () => {
  const life = lifecycle();
  const signer = makeSigningKey();
  const parent = makeKey({ metadata: { app: "web" } });
  const scopedParent = makeKey({ allowedModels: ["gpt-4o*"] });
  let cp: FakeControlPlane;
  let started: Started;

  beforeAll(async () => {
    cp = new FakeControlPlane([parent.upsert, scopedParent.upsert], 1, undefined, "org_eph", { resume: true });
    cp.signingKeys = [signer.message];
    await cp.start();
    life.add(() => cp.stop());
    started = await life.gateway(cp);
  });
  afterAll(() => life.run());

  const token = (key: TestKey = parent, opts: { orgId?: string; nowMs?: number; ttlSeconds?: number } = {}) =>
    mintToken(signer, {
      keyId: key.upsert.id,
      orgId: opts.orgId ?? "org_eph",
      nowMs: opts.nowMs ?? Date.now(),
      ttlSeconds: opts.ttlSeconds ?? 600,
    });

  async function refused(auth: string, reason: string): Promise<string> {
    const res = await chat(started.api.base, auth, "gpt-4o");
    expect(res.status).toBe(401);
    const body = await json(res);
    expect(body.error).toMatchObject({ type: "invalid_request_error", code: "invalid_api_key" });
    expect(await loggedRow(started.gw, res)).toMatchObject({ status: 401, error: `auth_${reason}`, ephemeral: true });
    expect(await started.api.metrics()).toMatch(
      new RegExp(`^tollgate_gateway_auth_failures_total\\{reason="${reason}"\\} \\d+$`, "m"),
    );
    return body.error.message as string;
  }

  it("authenticates as its parent key; the request log names the parent and the token id, never the token", async () => {
    const t = token();
    const res = await chat(started.api.base, t, "gpt-4o");
    expect(res.status).toBe(200);
    const jti = JSON.parse(Buffer.from(t.slice("llmpe_".length, t.lastIndexOf(".")), "base64url").toString())
      .jti as string;
    expect(await loggedRow(started.gw, res)).toMatchObject({
      status: 200,
      keyId: parent.upsert.id,
      ephemeral: true,
      ephemeralTokenId: jti,
      metadata: '{"app":"web"}',
    });
    const everything = JSON.stringify([started.gw.context.db.requestLog.list(), await auditRows(started.gw)]);
    expect(everything).not.toContain(t);
    expect(everything).not.toContain(t.slice(t.lastIndexOf(".") + 1));
  });

  it("holds the parent's scopes", async () => {
    expect((await chat(started.api.base, token(scopedParent), "gpt-4o-mini")).status).toBe(200);
    const res = await chat(started.api.base, token(scopedParent), "gpt-4");
    expect(res.status).toBe(403);
    expect((await json(res)).error.code).toBe("model_not_allowed");
    expect(await loggedRow(started.gw, res)).toMatchObject({
      keyId: scopedParent.upsert.id,
      ephemeral: true,
      status: 403,
    });
  });

  it("refuses an expired, tampered, foreign-signed or other organization's token", async () => {
    expect(
      await refused(token(parent, { nowMs: Date.now() - 3_600_000, ttlSeconds: 60 }), "ephemeral_expired"),
    ).toContain("expired");
    const t = token();
    const sig = t.slice(t.lastIndexOf(".") + 1);
    const tampered = `${t.slice(0, t.lastIndexOf("."))}.${sig.slice(0, 3)}${sig[3] === "x" ? "y" : "x"}${sig.slice(4)}`;
    await refused(tampered, "ephemeral_bad_signature");
    await refused("llmpe_e30.AAAA", "ephemeral_malformed");
    await refused(
      mintToken(makeSigningKey(), { keyId: parent.upsert.id, orgId: "org_eph" }),
      "ephemeral_unknown_signing_key",
    );
    await refused(token(parent, { orgId: "org_elsewhere" }), "ephemeral_wrong_org");
    const denials = (await auditRows(started.gw)).filter(
      (r) => r.event === "auth_denied" && String(r.detail.reason).startsWith("ephemeral_"),
    );
    expect(denials.length).toBeGreaterThanOrEqual(5);
    expect(JSON.stringify(denials)).not.toContain(sig);
  });

  it("accepts tokens of a signing key added by a delta", async () => {
    const next = makeSigningKey();
    cp.push([signingKeyChange(2, next.message)]);
    const t = mintToken(next, { keyId: parent.upsert.id, orgId: "org_eph" });
    // Wait for the delta itself: every 401 before it lands would count as a guessed key (brute-force protection).
    await eventually(() => (started.gw.context.keyCache.appliedRevision >= 2 ? true : undefined));
    expect((await chat(started.api.base, t, "m")).status).toBe(200);
  });

  it("dies with its parent: deactivated, then deleted", async () => {
    const t = token();
    expect((await chat(started.api.base, t, "m")).status).toBe(200);
    cp.push([upsertChange(3, withFields(parent.upsert, { status: KeyStatus.INACTIVE }))]);
    await eventually(async () => ((await chat(started.api.base, t, "m")).status === 401 ? true : undefined));
    expect(await refused(t, "ephemeral_parent_inactive")).toContain("is inactive");
    cp.push([upsertChange(4, parent.upsert)]);
    await eventually(async () => ((await chat(started.api.base, t, "m")).status === 200 ? true : undefined));
    cp.push([deleteChange(5, parent.upsert.id)]);
    await eventually(async () => ((await chat(started.api.base, t, "m")).status === 401 ? true : undefined));
    expect(await refused(t, "ephemeral_parent_inactive")).toContain("no longer exists");
  });

  it("keeps the signing keys across a restart while the control plane is down", async () => {
    const dataDir = started.dataDir;
    await started.gw.stop();
    await cp.stop();
    const again = await life.gateway(cp, { dataDir, waitReady: false });
    expect(again.gw.context.syncState.ready).toBe(true);
    expect(again.gw.context.syncState.connected).toBe(false);
    expect((await again.api.readyz()).body).toMatchObject({ ready: true, source: "cache", keys: 1, signing_keys: 2 });
    expect((await chat(again.api.base, token(scopedParent), "gpt-4o")).status).toBe(200);
  });
});

describe("before the first snapshot", () => {
  const life = lifecycle();
  afterAll(() => life.run());

  it("answers 503 gateway_not_ready with Retry-After instead of 401, then serves", async () => {
    const key = makeKey();
    const cp = new FakeControlPlane([key.upsert], 1);
    await cp.start();
    life.add(() => cp.stop());
    cp.holdSubscriptions();
    const { gw, api } = await life.gateway(cp, { waitReady: false });
    await eventually(() => (cp.subscriptions.length > 0 ? true : undefined));
    for (const res of [
      await chat(api.base, key.secret, "m"),
      await models(api.base, "nothing"),
      await fetch(`${api.base}/v1/models`),
    ]) {
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("2");
      expect(await json(res)).toEqual({
        error: {
          message: "This gateway has not received its keys from the control plane yet; retry shortly.",
          type: "server_error",
          param: null,
          code: "gateway_not_ready",
        },
      });
      expect(await loggedRow(gw, res)).toMatchObject({ status: 503, error: "gateway_not_ready", keyId: null });
    }
    expect(await api.metrics()).not.toMatch(/tollgate_gateway_auth_failures_total\{/);
    cp.releaseSubscriptions();
    await eventually(async () => ((await chat(api.base, key.secret, "m")).status === 200 ? true : undefined));
  });
});

describe("upgrading from a release that did not keep scopes", () => {
  const life = lifecycle();
  afterAll(() => life.run());

  it("serves the cached keys at once, asks for a full snapshot, then enforces the scopes it brings", async () => {
    const dir = tempDir();
    life.add(() => dir.remove());
    const key = makeKey();
    // What the older gateway left: the key at revision 7, its scopes dropped.
    const old = new BetterSqlite3(join(dir.path, "gateway.db"));
    migrate(old, migrations.slice(0, 1));
    old
      .prepare(
        "INSERT INTO meta (key, value) VALUES ('revision', '7'), ('org_id', 'org_test'), ('gateway_id', 'gw_0000000000000000000000')",
      )
      .run();
    old
      .prepare(
        "INSERT INTO keys (id, key_hash, key_prefix, name, user_id, team_id, status, expires_at_ms, created_at_ms, updated_revision) VALUES (?, ?, ?, ?, ?, '', 1, NULL, 0, 7)",
      )
      .run(key.upsert.id, Buffer.from(key.upsert.keyHash), key.upsert.keyPrefix, key.upsert.name, key.upsert.userId);
    old.close();

    const scoped = withFields(key.upsert, { allowedModels: ["gpt-4o*"] });
    const cp = new FakeControlPlane([scoped], 7, undefined, undefined, { resume: true });
    cp.holdSubscriptions();
    await cp.start();
    life.add(() => cp.stop());
    const first = await life.gateway(cp, { dataDir: dir.path, waitReady: false });
    // Served from the cache while the snapshot is pending, as before the upgrade.
    expect((await chat(first.api.base, key.secret, "gpt-4")).status).toBe(200);
    await eventually(() => (cp.subscriptions.length > 0 ? true : undefined));
    expect(cp.subscriptions[0]?.lastRevision).toBe(0n);
    cp.releaseSubscriptions();
    await eventually(async () => ((await chat(first.api.base, key.secret, "gpt-4")).status === 403 ? true : undefined));
    await first.gw.stop();

    // Once resynced, a restart resumes from its revision again.
    const again = await life.gateway(cp, { dataDir: dir.path });
    await eventually(() => (cp.subscriptions.length === 2 ? true : undefined));
    expect(cp.subscriptions[1]?.lastRevision).toBe(7n);
    expect((await chat(again.api.base, key.secret, "gpt-4")).status).toBe(403);
  });
});

describe("a keep-alive connection's credential (CredentialMemo)", () => {
  const life = lifecycle();
  const clock = manualClock();
  const signer = makeSigningKey();
  const expiring = makeKey({ expiresAtMs: clock.now() + 60_000 });
  const revocable = makeKey();
  const other = makeKey();
  const original = makeKey();
  // Its previous secret's grace outlasts the first test's expiry (60 s on the clock).
  const rotated = rotateKey(original, clock.now() + 120_000);
  let cp: FakeControlPlane;
  let started: Started;
  // One socket for every request: each answer says which one it came on.
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });

  beforeAll(async () => {
    cp = new FakeControlPlane(
      [expiring.upsert, revocable.upsert, other.upsert, rotated.upsert],
      1,
      undefined,
      "org_memo",
    );
    cp.signingKeys = [signer.message];
    await cp.start();
    life.add(() => cp.stop());
    started = await life.gateway(cp, { clock });
  });
  afterAll(async () => {
    agent.destroy();
    await life.run();
  });

  /** A chat call on the one socket: its status, its error code, the socket's local port and the logged key. */
  async function call(secret: string): Promise<{ status: number; code: string | null; port: number; keyId: unknown }> {
    const body = JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] });
    const { base } = started.api;
    const answer = await new Promise<{ status: number; text: string; port: number; id: string }>((resolve, reject) => {
      const req = httpRequest(
        `${base}/v1/chat/completions`,
        {
          method: "POST",
          agent,
          headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => {
            text += c;
          });
          res.on("end", () =>
            resolve({
              status: res.statusCode!,
              text,
              port: req.socket!.localPort!,
              id: String(res.headers["x-request-id"]),
            }),
          );
        },
      );
      req.on("error", reject);
      req.end(body);
    });
    const row = await eventually(() => started.gw.context.db.requestLog.list().find((r) => r.requestId === answer.id));
    const code = answer.status === 200 ? null : (JSON.parse(answer.text).error.code as string);
    return { status: answer.status, code, port: answer.port, keyId: row.keyId };
  }

  it("refuses a key on the same connection from the instant it expires by the clock", async () => {
    const first = await call(expiring.secret);
    expect(first).toMatchObject({ status: 200, keyId: expiring.upsert.id });
    expect(await call(expiring.secret)).toMatchObject({ status: 200, port: first.port });
    clock.advance(60_000);
    expect(await call(expiring.secret)).toMatchObject({ status: 401, port: first.port });
  });

  it("refuses a revoked key on the same connection once the change is applied", async () => {
    const first = await call(revocable.secret);
    expect(first).toMatchObject({ status: 200, keyId: revocable.upsert.id });
    cp.push([upsertChange(2, withFields(revocable.upsert, { status: KeyStatus.REVOKED }))]);
    await eventually(() => (started.gw.context.keyCache.appliedRevision >= 2 ? true : undefined));
    expect(await call(revocable.secret)).toMatchObject({ status: 401, port: first.port });
  });

  it("authenticates each key sent on the same connection as itself, and refuses a wrong one", async () => {
    const a = await call(other.secret);
    const b = await call(rotated.secret);
    expect(a).toMatchObject({ status: 200, keyId: other.upsert.id });
    expect(b).toMatchObject({ status: 200, keyId: original.upsert.id, port: a.port });
    const wrong = `${other.secret.slice(0, -1)}${other.secret.endsWith("A") ? "B" : "A"}`;
    expect(await call(wrong)).toMatchObject({ status: 401, port: a.port });
    expect(await call(other.secret)).toMatchObject({ status: 200, keyId: other.upsert.id, port: a.port });
  });

  it("ends a previous secret's grace, and an ephemeral token, on the same connection by the clock", async () => {
    const graced = await call(original.secret);
    expect(graced).toMatchObject({ status: 200, keyId: original.upsert.id });
    const token = mintToken(signer, { keyId: other.upsert.id, orgId: "org_memo", nowMs: clock.now(), ttlSeconds: 30 });
    expect(await call(token)).toMatchObject({ status: 200, keyId: other.upsert.id, port: graced.port });
    expect(await call(token)).toMatchObject({ status: 200, port: graced.port });
    clock.advance(30_000);
    expect(await call(token)).toMatchObject({ status: 401, port: graced.port });
    expect(await call(original.secret)).toMatchObject({ status: 200, port: graced.port });
    expect(await call(original.secret)).toMatchObject({ status: 200, port: graced.port });
    clock.advance(30_000);
    expect(await call(original.secret)).toMatchObject({ status: 401, port: graced.port });
    expect(await call(rotated.secret)).toMatchObject({ status: 200, port: graced.port });
  });
});
