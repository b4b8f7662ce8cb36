import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  checkApiKeyFormat,
  createLogger,
  ed25519PublicKeyFromRaw,
  hashApiKey,
  KeySyncService,
  McpAccessMode,
  newId,
  verifyEphemeralToken,
  type KeyUpsert,
  type SigningKey,
  type SubscribeResponse,
} from "@tollgate/shared";
import type { ControlPlane } from "../index.js";
import { readChanges } from "../repositories/change-log.js";
import { keySyncRecord } from "../repositories/key-sync-records.js";
import { startTestControlPlane, type TestControlPlane } from "../../test/test-control-plane.js";
import { TEST_MASTER_KEY } from "../../test/test-config.js";

let test: TestControlPlane;
let cp: ControlPlane;
let base: string;
let grpcPort: number;
let userId: string;

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + path, {
    method,
    headers: {
      authorization: `Bearer ${TEST_MASTER_KEY}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined, headers: res.headers };
}

beforeAll(async () => {
  test = await startTestControlPlane({ heartbeatIntervalMs: 200 });
  cp = test.cp;
  base = test.base;
  grpcPort = test.grpcPort;
  userId = (await call("POST", "/internal/users", { external_id: "alice@example.com" })).body.id;
});

afterAll(async () => {
  await test?.stop();
});

/** The key as a freshly attached gateway of `org` would receive it. */
async function snapshotOf(token: string): Promise<{ keys: KeyUpsert[]; signingKeys: SigningKey[] }> {
  const client = createClient(KeySyncService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${grpcPort}` }));
  const abort = new AbortController();
  const events: SubscribeResponse[] = [];
  for await (const ev of client.subscribe(
    { gatewayId: newId("gw"), lastRevision: 0n },
    { headers: { authorization: `Bearer ${token}` }, signal: abort.signal },
  )) {
    events.push(ev);
    if (ev.event.case === "snapshotEnd") break;
  }
  abort.abort();
  return {
    keys: events.flatMap((e) => (e.event.case === "snapshotChunk" ? e.event.value.keys : [])),
    signingKeys: events.flatMap((e) => (e.event.case === "snapshotChunk" ? e.event.value.signingKeys : [])),
  };
}

const fullKey = {
  name: "Production API",
  expires_at: "90d",
  rpm_limit: 60,
  tpm_limit: 100000,
  budget_usd: 25.5,
  budget_alert_thresholds: [50, 80, 100],
  allowed_providers: ["openai", "anthropic"],
  allowed_models: ["gpt-4o*", "claude-3-5-sonnet-latest"],
  ip_allowlist: ["192.168.1.0/24", "10.0.0.1", "2001:db8::/32"],
  metadata: { team: "backend", env: "production" },
  mcp_enabled: true,
  mcp_access_mode: "allow_list",
  mcp_servers: ["github"],
  mcp_tools: { github: ["create_issue", "search_code"] },
};

describe("key fields", () => {
  it("stores every field of the key page and syncs it to gateways", async () => {
    const created = await call("POST", "/internal/api-keys", { ...fullKey, user_id: userId });
    expect(created.status).toBe(201);
    const { key, ...shown } = created.body;
    expect(checkApiKeyFormat(key)).toBeNull();
    expect(shown).toMatchObject({
      ...fullKey,
      expires_at: expect.any(String),
      status: "active",
      owner: "alice@example.com",
      requests: 0,
      last_used_at: null,
      spend_usd: 0,
    });
    const days = (Date.parse(shown.expires_at) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(89.9);
    expect(days).toBeLessThan(90.1);

    const token = (await call("POST", "/internal/gateway-tokens", { name: "fields" })).body.token;
    const synced = (await snapshotOf(token)).keys.find((k) => k.id === shown.id)!;
    expect(Buffer.from(synced.keyHash).equals(hashApiKey(key))).toBe(true);
    expect(synced).toMatchObject({
      rpmLimit: 60n,
      tpmLimit: 100000n,
      budgetUsd: 25.5,
      budgetAlertThresholds: [50, 80, 100],
      allowedProviders: ["openai", "anthropic"],
      allowedModels: ["gpt-4o*", "claude-3-5-sonnet-latest"],
      ipAllowlist: ["192.168.1.0/24", "10.0.0.1", "2001:db8::/32"],
    });
    expect(JSON.parse(synced.metadataJson)).toEqual({ team: "backend", env: "production" });
    expect(synced.mcp?.enabled).toBe(true);
    expect(synced.mcp?.accessMode).toBe(McpAccessMode.ALLOW_LIST);
    expect(synced.mcp?.tools.github?.tools).toEqual(["create_issue", "search_code"]);
  });

  it("answers and syncs a new key exactly as reading it back shows it, owner's team limits included", async () => {
    const team = (
      await call("POST", "/internal/teams", { name: "limited", tpm_limit: 90000, daily_token_limit: 900000 })
    ).body;
    const owner = (
      await call("POST", "/internal/users", { external_id: "limits@example.com", team_id: team.id, rpm_limit: 30 })
    ).body;
    const created = await call("POST", "/internal/api-keys", { ...fullKey, user_id: owner.id });
    expect(created.status).toBe(201);
    const { key: _secret, ...shown } = created.body;
    expect((await call("GET", `/internal/api-keys/${shown.id}`)).body).toEqual(shown);

    const app = cp.context!;
    const revision = Number(created.headers.get("x-tollgate-revision"));
    const [logged] = await readChanges(app.db, app.defaultOrgId, revision - 1, 1);
    expect(logged).toMatchObject({ revision, kind: "key_upsert", resourceId: shown.id });
    expect(logged!.payload).toEqual(await keySyncRecord(app.db, app.defaultOrgId, shown.id));
    expect(logged!.payload).toMatchObject({
      team_id: team.id,
      owner_limits: { user_rpm_limit: 30, team_tpm_limit: 90000, team_daily_token_limit: 900000 },
    });
    // Its audit row, written in the same statement as the change log: no state before, the key (no secret) after.
    const audited = (await call("GET", `/internal/audit-logs?target_id=${shown.id}`)).body.data;
    expect(audited).toHaveLength(1);
    expect(audited[0]).toMatchObject({ action: "api_key.create", target_type: "api_key", before: null, after: shown });
  });

  it("rejects each invalid field with a 400 naming it, and writes nothing", async () => {
    const before = (await call("GET", "/internal/api-keys?limit=1000")).body.data.length;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ expires_at: "45d" }, "expires_at"],
      [{ expires_at: "2001-01-01T00:00:00Z" }, "expires_at"],
      [{ rpm_limit: 0 }, "rpm_limit"],
      [{ tpm_limit: 1.5 }, "tpm_limit"],
      [{ budget_usd: -5 }, "budget_usd"],
      [{ budget_alert_thresholds: [80, 50] }, "budget_alert_thresholds"],
      [{ budget_alert_thresholds: [50] }, "budget_alert_thresholds"],
      [{ budget_usd: 10, budget_alert_thresholds: [0] }, "budget_alert_thresholds.0"],
      [{ allowed_providers: ["Open AI"] }, "allowed_providers.0"],
      [{ allowed_models: ["gpt-[4]"] }, "allowed_models.0"],
      [{ allowed_models: ["**"] }, "allowed_models.0"],
      [{ ip_allowlist: ["10.0.0.0/33"] }, "ip_allowlist.0"],
      [{ ip_allowlist: ["not-an-ip"] }, "ip_allowlist.0"],
      [{ ip_allowlist: ["2001:db8::/129"] }, "ip_allowlist.0"],
      [{ metadata: ["a"] }, "metadata"],
      [{ mcp_access_mode: "sometimes" }, "mcp_access_mode"],
      [{ mcp_tools: { github: "all" } }, "mcp_tools.github"],
      [{ owner: "bob" }, "owner"],
    ];
    for (const [extra, field] of cases) {
      const res = await call("POST", "/internal/api-keys", { name: "bad", user_id: userId, ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(res.body.error.field, JSON.stringify(extra)).toBe(field);
      expect(res.body.error.message).toContain(field);
    }
    expect((await call("GET", "/internal/api-keys?limit=1000")).body.data.length).toBe(before);
  });
});

describe("key operations", () => {
  async function newKey(extra: Record<string, unknown> = {}) {
    return (
      await call("POST", "/internal/api-keys", {
        name: `k-${Math.random().toString(36).slice(2, 7)}`,
        user_id: userId,
        ...extra,
      })
    ).body;
  }

  it("GET and PATCH a key; PATCH validates and audits before/after without secrets", async () => {
    const k = await newKey();
    const got = await call("GET", `/internal/api-keys/${k.id}`);
    expect(got.body).not.toHaveProperty("key");
    const patched = await call("PATCH", `/internal/api-keys/${k.id}`, {
      name: "renamed",
      rpm_limit: 10,
      allowed_models: ["gpt-4o-mini"],
      mcp_enabled: true,
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({
      name: "renamed",
      rpm_limit: 10,
      allowed_models: ["gpt-4o-mini"],
      mcp_enabled: true,
      mcp_access_mode: "allow_all",
    });
    expect((await call("PATCH", `/internal/api-keys/${k.id}`, {})).status).toBe(400);
    expect((await call("PATCH", `/internal/api-keys/${k.id}`, { user_id: userId })).body.error.field).toBe("user_id");
    expect(
      (await call("PATCH", `/internal/api-keys/${k.id}`, { budget_alert_thresholds: [50] })).body.error.field,
    ).toBe("budget_alert_thresholds");
    expect((await call("PATCH", `/internal/api-keys/${newId("ak")}`, { name: "x" })).status).toBe(404);
    const audit = await call("GET", `/internal/audit-logs?target_id=${k.id}&action=api_key.update`);
    expect(audit.body.data).toHaveLength(1);
    expect(audit.body.data[0].before.name).toBe(k.name);
    expect(audit.body.data[0].after.name).toBe("renamed");
    expect(JSON.stringify(audit.body)).not.toContain(k.key);
  });

  it("deactivates, activates and revokes, refusing transitions that make no sense", async () => {
    const k = await newKey();
    expect((await call("POST", `/internal/api-keys/${k.id}/deactivate`)).body.status).toBe("inactive");
    expect((await call("POST", `/internal/api-keys/${k.id}/deactivate`)).status).toBe(409);
    expect((await call("POST", `/internal/api-keys/${k.id}/activate`)).body.status).toBe("active");
    expect((await call("POST", `/internal/api-keys/${k.id}/revoke`)).body.status).toBe("revoked");
    expect((await call("POST", `/internal/api-keys/${k.id}/activate`)).body.status).toBe("active");
    const actions = (await call("GET", `/internal/audit-logs?target_id=${k.id}`)).body.data.map(
      (a: { action: string }) => a.action,
    );
    expect(actions).toEqual([
      "api_key.activate",
      "api_key.revoke",
      "api_key.activate",
      "api_key.deactivate",
      "api_key.create",
    ]);
  });

  it("rotates: a new secret once, the old one ends now or after a grace period, and Idempotency-Key replays", async () => {
    const k = await newKey();
    const rotated = await call(
      "POST",
      `/internal/api-keys/${k.id}/rotate`,
      { grace_seconds: 600 },
      { "idempotency-key": "rotate-req-0001" },
    );
    expect(rotated.status).toBe(200);
    expect(rotated.body.key).not.toBe(k.key);
    expect(checkApiKeyFormat(rotated.body.key)).toBeNull();
    expect(Date.parse(rotated.body.previous_key_expires_at) - Date.now()).toBeGreaterThan(590_000);
    const replay = await call(
      "POST",
      `/internal/api-keys/${k.id}/rotate`,
      { grace_seconds: 600 },
      { "idempotency-key": "rotate-req-0001" },
    );
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.body.key).toBe(rotated.body.key);
    expect(replay.body.key_prefix).toBe(rotated.body.key_prefix);
    const other = await newKey();
    expect(
      (await call("POST", `/internal/api-keys/${other.id}/rotate`, {}, { "idempotency-key": "rotate-req-0001" }))
        .status,
    ).toBe(409);
    expect((await call("POST", `/internal/api-keys/${k.id}/rotate`, { grace_seconds: -1 })).body.error.field).toBe(
      "grace_seconds",
    );

    const token = (await call("POST", "/internal/gateway-tokens", { name: "rotation" })).body.token;
    const synced = (await snapshotOf(token)).keys.find((s) => s.id === k.id)!;
    expect(Buffer.from(synced.keyHash).equals(hashApiKey(rotated.body.key))).toBe(true);
    expect(Buffer.from(synced.previousKeyHash).equals(hashApiKey(k.key))).toBe(true);

    const again = await call("POST", `/internal/api-keys/${k.id}/rotate`);
    expect(again.body.previous_key_expires_at).toBeNull();
    const after = (await snapshotOf(token)).keys.find((s) => s.id === k.id)!;
    // The old secret still syncs, its grace already over: gateways refuse it as "rotated" (no guess).
    expect(Buffer.from(after.previousKeyHash).equals(hashApiKey(rotated.body.key))).toBe(true);
    expect(Number(after.previousKeyExpiresAt!.seconds) * 1000).toBeLessThanOrEqual(Date.now());
    const actions = (await call("GET", `/internal/audit-logs?target_id=${k.id}&action=api_key.rotate`)).body.data;
    expect(actions).toHaveLength(2);
    expect(JSON.stringify(actions)).not.toContain(rotated.body.key);
  });

  it("issues ephemeral tokens that verify offline with the synced public key and never outlive their parent", async () => {
    const k = await newKey({ expires_at: "30d" });
    const res = await call("POST", `/internal/api-keys/${k.id}/ephemeral-tokens`, { ttl_seconds: 120 });
    expect(res.status).toBe(201);
    const token = (await call("POST", "/internal/gateway-tokens", { name: "ephemeral" })).body.token;
    const { signingKeys } = await snapshotOf(token);
    expect(signingKeys.length).toBeGreaterThan(0);
    const keys = new Map(signingKeys.map((s) => [s.id, ed25519PublicKeyFromRaw(s.publicKey)]));
    const verified = verifyEphemeralToken(res.body.token, (kid) => keys.get(kid), Math.floor(Date.now() / 1000));
    expect(verified.ok).toBe(true);
    if (verified.ok) expect(verified.claims.key_id).toBe(k.id);
    expect(Date.parse(res.body.expires_at) - Date.now()).toBeLessThanOrEqual(120_000);
    const defaulted = await call("POST", `/internal/api-keys/${k.id}/ephemeral-tokens`);
    expect(Date.parse(defaulted.body.expires_at) - Date.now()).toBeGreaterThan(3500_000);
    for (const ttl of [0, 59, 86_401, "1h"]) {
      const bad = await call("POST", `/internal/api-keys/${k.id}/ephemeral-tokens`, { ttl_seconds: ttl });
      expect(bad.status, String(ttl)).toBe(400);
      expect(bad.body.error.field).toBe("ttl_seconds");
    }
    await call("POST", `/internal/api-keys/${k.id}/deactivate`);
    expect((await call("POST", `/internal/api-keys/${k.id}/ephemeral-tokens`)).status).toBe(409);
    const audit = await call("GET", `/internal/audit-logs?target_id=${k.id}&action=api_key.ephemeral_token`);
    expect(audit.body.data).toHaveLength(2);
    expect(JSON.stringify(audit.body)).not.toContain(res.body.token);
  });
});

describe("listing", () => {
  it("searches by name or prefix, filters by status, sorts, and pages with cursors", async () => {
    const owner = (await call("POST", "/internal/users", { external_id: "zed@example.com" })).body.id;
    const made = [];
    for (const name of ["list-charlie", "list-alpha", "list-bravo", "list-delta"]) {
      made.push((await call("POST", "/internal/api-keys", { name, user_id: owner })).body);
    }
    await call("POST", `/internal/api-keys/${made[3].id}/deactivate`);

    const byName = await call("GET", "/internal/api-keys?search=list-&sort=name&limit=2");
    expect(byName.body.data.map((k: { name: string }) => k.name)).toEqual(["list-alpha", "list-bravo"]);
    const page2 = await call(
      "GET",
      `/internal/api-keys?search=list-&sort=name&limit=2&cursor=${byName.body.next_cursor}`,
    );
    expect(page2.body.data.map((k: { name: string }) => k.name)).toEqual(["list-charlie", "list-delta"]);
    expect(page2.body.next_cursor).toBeNull();
    const desc = await call("GET", "/internal/api-keys?search=list-&sort=name&order=desc&limit=3");
    expect(desc.body.data.map((k: { name: string }) => k.name)).toEqual(["list-delta", "list-charlie", "list-bravo"]);

    const byPrefix = await call("GET", `/internal/api-keys?search=${made[0].key_prefix}`);
    expect(byPrefix.body.data.map((k: { id: string }) => k.id)).toEqual([made[0].id]);
    const inactive = await call("GET", "/internal/api-keys?search=list-&status=inactive");
    expect(inactive.body.data.map((k: { id: string }) => k.id)).toEqual([made[3].id]);
    const byOwner = await call("GET", `/internal/api-keys?user_id=${owner}&sort=owner`);
    expect(byOwner.body.data.every((k: { owner: string }) => k.owner === "zed@example.com")).toBe(true);
    for (const k of byOwner.body.data) {
      expect(Object.keys(k)).toEqual(
        expect.arrayContaining([
          "name",
          "owner",
          "key_prefix",
          "status",
          "expires_at",
          "last_used_at",
          "created_at",
          "requests",
        ]),
      );
      expect(k).not.toHaveProperty("key");
    }
    expect((await call("GET", "/internal/api-keys?sort=color")).body.error.field).toBe("sort");
    expect((await call("GET", "/internal/api-keys?cursor=garbage")).body.error.field).toBe("cursor");
  });
});

describe("teams and users", () => {
  it("moving a user to another team re-syncs its keys; deletes refuse or cascade as documented", async () => {
    const red = (await call("POST", "/internal/teams", { name: "red" })).body;
    const blue = (await call("POST", "/internal/teams", { name: "blue" })).body;
    const user = (await call("POST", "/internal/users", { external_id: "mover@example.com", team_id: red.id })).body;
    const key = (await call("POST", "/internal/api-keys", { name: "mover-key", user_id: user.id })).body;
    const token = (await call("POST", "/internal/gateway-tokens", { name: "teams" })).body.token;
    expect((await snapshotOf(token)).keys.find((k) => k.id === key.id)!.teamId).toBe(red.id);
    const moved = await call("PATCH", `/internal/users/${user.id}`, { team_id: blue.id });
    expect(moved.body.team_id).toBe(blue.id);
    expect(moved.headers.get("x-tollgate-revision")).toBeNull();
    expect((await snapshotOf(token)).keys.find((k) => k.id === key.id)!.teamId).toBe(blue.id);

    expect((await call("PATCH", `/internal/teams/${red.id}`, { tpm_limit: 5000 })).body.tpm_limit).toBe(5000);
    expect((await call("PATCH", `/internal/teams/${red.id}`, { name: "blue" })).status).toBe(409);
    const refuse = await call("DELETE", `/internal/teams/${blue.id}`);
    expect(refuse.status).toBe(409);
    expect(refuse.body.error.message).toContain("1 user");
    expect((await call("DELETE", `/internal/teams/${red.id}`)).status).toBe(200);
    expect((await call("GET", `/internal/teams/${red.id}`)).status).toBe(404);

    const keep = await call("DELETE", `/internal/users/${user.id}`);
    expect(keep.status).toBe(409);
    expect(keep.body.error.message).toContain("cascade=true");
    const cascade = await call("DELETE", `/internal/users/${user.id}?cascade=true`);
    expect(cascade.body).toEqual({ id: user.id, deleted: true, deleted_keys: [key.id] });
    expect((await call("GET", `/internal/api-keys/${key.id}`)).status).toBe(404);
    expect((await snapshotOf(token)).keys.some((k) => k.id === key.id)).toBe(false);
    expect((await call("DELETE", `/internal/teams/${blue.id}`)).status).toBe(200);
  });
});

describe("organizations", () => {
  it("scopes every admin call to the organization in Tollgate-Organization, and gateways only ever see their own", async () => {
    const org = await call("POST", "/internal/orgs", { name: "acme" });
    expect(org.status).toBe(201);
    expect(org.body.id).toMatch(/^org_/);
    expect((await call("POST", "/internal/orgs", { name: "acme" })).status).toBe(409);
    const h = { "tollgate-organization": org.body.id };
    const acmeUser = (await call("POST", "/internal/users", { external_id: "alice@example.com" }, h)).body;
    expect(acmeUser.id).toMatch(/^user_/); // the same external id is free in another org
    const acmeKey = (await call("POST", "/internal/api-keys", { name: "acme-key", user_id: acmeUser.id }, h)).body;
    // Cross-org references do not resolve.
    expect((await call("POST", "/internal/api-keys", { name: "x", user_id: userId }, h)).status).toBe(404);
    expect((await call("GET", `/internal/api-keys/${acmeKey.id}`)).status).toBe(404);
    expect((await call("GET", "/internal/api-keys", undefined, h)).body.data.map((k: { id: string }) => k.id)).toEqual([
      acmeKey.id,
    ]);

    const acmeToken = (await call("POST", "/internal/gateway-tokens", { name: "acme-gw" }, h)).body.token;
    const defaultToken = (await call("POST", "/internal/gateway-tokens", { name: "default-gw" })).body.token;
    expect((await snapshotOf(acmeToken)).keys.map((k) => k.id)).toEqual([acmeKey.id]);
    expect((await snapshotOf(defaultToken)).keys.some((k) => k.id === acmeKey.id)).toBe(false);

    expect(
      (await call("GET", "/internal/teams", undefined, { "tollgate-organization": "org_00000000000000000000000000" }))
        .status,
    ).toBe(404);
    expect(
      (await call("GET", "/internal/teams", undefined, { "tollgate-organization": "acme" })).body.error.field,
    ).toBe("Tollgate-Organization");
    const orgs = (await call("GET", "/internal/orgs")).body.data.map((o: { name: string }) => o.name);
    expect(orgs).toEqual(expect.arrayContaining(["default", "acme"]));
  });
});
