import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkApiKeyFormat } from "@tollgate/shared";
import type { ControlPlane } from "../index.js";
import { startTestControlPlane, type TestControlPlane } from "../../test/test-control-plane.js";
import { TEST_MASTER_KEY } from "../../test/test-config.js";

const MASTER_KEY = TEST_MASTER_KEY;
let test: TestControlPlane;
let cp: ControlPlane;
let base: string;

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + path, {
    method,
    headers: {
      authorization: `Bearer ${MASTER_KEY}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

beforeAll(async () => {
  test = await startTestControlPlane({ heartbeatIntervalMs: 5000, maxBodyBytes: 64 * 1024 });
  cp = test.cp;
  base = test.base;
});

afterAll(async () => {
  await test?.stop();
});

describe("admin API", () => {
  it("creates team, user and key exactly as the seed curls do, and lists never show the key", async () => {
    const team = await call("POST", "/internal/teams", {
      name: "engineering",
      tpm_limit: 200000,
      daily_token_limit: 5000000,
    });
    expect(team.status).toBe(201);
    expect(team.body).toMatchObject({ name: "engineering", tpm_limit: 200000, daily_token_limit: 5000000 });
    expect(team.body.id).toMatch(/^team_[0-9a-z]{26}$/);

    const user = await call("POST", "/internal/users", { external_id: "alice@example.com", team_id: team.body.id });
    expect(user.status).toBe(201);
    expect(user.body).toMatchObject({ external_id: "alice@example.com", team_id: team.body.id });

    const key = await call("POST", "/internal/api-keys", { name: "dev-laptop", user_id: user.body.id });
    expect(key.status).toBe(201);
    expect(Object.keys(key.body)).toEqual(
      expect.arrayContaining(["id", "name", "key", "key_prefix", "user_id", "created_at"]),
    );
    expect(key.body.id).toMatch(/^ak_/);
    expect(checkApiKeyFormat(key.body.key)).toBeNull();
    expect(key.body.key.startsWith(key.body.key_prefix)).toBe(true);

    const list = await call("GET", "/internal/api-keys");
    expect(list.status).toBe(200);
    expect(list.body.data).toHaveLength(1);
    expect(list.body.data[0]).toMatchObject({
      id: key.body.id,
      key_prefix: key.body.key_prefix,
      user_id: user.body.id,
    });
    expect(JSON.stringify(list.body)).not.toContain(key.body.key);
    const one = await call("GET", `/internal/api-keys/${key.body.id}`);
    expect(one.body).not.toHaveProperty("key");
    expect(JSON.stringify(one.body)).not.toContain(key.body.key);

    const teams = await call("GET", "/internal/teams");
    expect(teams.body.data.map((t: { id: string }) => t.id)).toContain(team.body.id);
    const users = await call("GET", "/internal/users");
    expect(users.body.data.map((u: { id: string }) => u.id)).toContain(user.body.id);

    const audit = await call("GET", `/internal/audit-logs?target_id=${key.body.id}`);
    expect(audit.body.data.map((a: { action: string }) => a.action)).toEqual(["api_key.create"]);
    expect(JSON.stringify(audit.body)).not.toContain(key.body.key);

    const del = await call("DELETE", `/internal/api-keys/${key.body.id}`);
    expect(del.status).toBe(200);
    expect((await call("GET", `/internal/api-keys/${key.body.id}`)).status).toBe(404);
    expect((await call("DELETE", `/internal/api-keys/${key.body.id}`)).status).toBe(404);
  });

  it("filters the audit log by a part of the actor, in any case, with LIKE wildcards taken literally", async () => {
    const minted = await call("POST", "/internal/admin-tokens", { name: "auditor", role: "admin" });
    expect(minted.status).toBe(201);
    const byToken = await call(
      "POST",
      "/internal/teams",
      { name: "audited-by-token" },
      {
        authorization: `Bearer ${minted.body.token}`,
      },
    );
    expect(byToken.status).toBe(201);
    const tokenActor = `admin_token:${minted.body.id}`;

    const mine = await call("GET", `/internal/audit-logs?actor=${encodeURIComponent(tokenActor.toUpperCase())}`);
    expect(mine.status).toBe(200);
    expect(mine.body.data.map((a: { actor: string; target_id: string }) => [a.actor, a.target_id])).toEqual([
      [tokenActor, byToken.body.id],
    ]);
    const master = await call("GET", "/internal/audit-logs?actor=MASTER_&limit=1000");
    expect(master.body.data.length).toBeGreaterThan(0);
    expect(master.body.data.every((a: { actor: string }) => a.actor === "master_key")).toBe(true);
    // `%` and `_` match themselves, not any text.
    expect((await call("GET", "/internal/audit-logs?actor=%25")).body.data).toEqual([]);
    expect((await call("GET", "/internal/audit-logs?actor=master%5Fkey")).body.data.length).toBeGreaterThan(0);
    expect((await call("GET", "/internal/audit-logs?actor=maste__key")).body.data).toEqual([]);
    const tooLong = await call("GET", `/internal/audit-logs?actor=${"a".repeat(201)}`);
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.message).toContain("actor");
  });

  it("refuses requests without the right master key", async () => {
    expect((await call("GET", "/internal/teams", undefined, { authorization: "" })).status).toBe(401);
    const wrong = await call("GET", "/internal/teams", undefined, { authorization: "Bearer nope" });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe("unauthorized");
    expect(JSON.stringify(wrong.body)).not.toContain(MASTER_KEY);
  });

  it("answers bad input with a 4xx naming the problem and writes nothing", async () => {
    const before = (await call("GET", "/internal/teams")).body.data.length;
    const cases: Array<[unknown, number, string, string | undefined]> = [
      ["{", 400, "invalid_json", undefined],
      ["[1,2]", 400, "invalid_request", undefined],
      [{}, 400, "invalid_request", "name"],
      [{ name: "" }, 400, "invalid_request", "name"],
      [{ name: 42 }, 400, "invalid_request", "name"],
      [{ name: "x", tpm_limit: "lots" }, 400, "invalid_request", "tpm_limit"],
      [{ name: "x", tpm_limit: -1 }, 400, "invalid_request", "tpm_limit"],
      [{ name: "x", daily_token_limit: 1.5 }, 400, "invalid_request", "daily_token_limit"],
      [{ name: "x", color: "red" }, 400, "invalid_request", "color"],
    ];
    for (const [body, status, code, field] of cases) {
      const res = await call("POST", "/internal/teams", body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.body.error.code).toBe(code);
      if (field) {
        expect(res.body.error.field).toBe(field);
        expect(res.body.error.message).toContain(field);
      }
    }
    const wrongType = await call("POST", "/internal/teams", "name=x", { "content-type": "text/plain" });
    expect(wrongType.status).toBe(415);
    const huge = await call("POST", "/internal/teams", { name: "x".repeat(100_000) });
    expect(huge.status).toBe(413);

    const missingTeam = await call("POST", "/internal/users", {
      external_id: "bob",
      team_id: "team_00000000000000000000000000",
    });
    expect(missingTeam.status).toBe(404);
    expect(missingTeam.body.error.field).toBe("team_id");
    const missingUser = await call("POST", "/internal/api-keys", {
      name: "k",
      user_id: "user_00000000000000000000000000",
    });
    expect(missingUser.status).toBe(404);
    expect(missingUser.body.error.field).toBe("user_id");
    const badId = await call("POST", "/internal/api-keys", { name: "k", user_id: "alice" });
    expect(badId.status).toBe(400);
    expect(badId.body.error.field).toBe("user_id");

    expect((await call("GET", "/internal/teams")).body.data.length).toBe(before);
    expect(
      (await call("GET", "/internal/users")).body.data.map((u: { external_id: string }) => u.external_id),
    ).not.toContain("bob");
  });

  it("rejects duplicates, unknown routes and wrong methods with JSON errors", async () => {
    await call("POST", "/internal/teams", { name: "dup" });
    const dup = await call("POST", "/internal/teams", { name: "dup" });
    expect(dup.status).toBe(409);
    expect(dup.body.error.field).toBe("name");
    const unknown = await call("GET", "/internal/nothing-here");
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("not_found");
    const method = await call("PUT", "/internal/teams", {});
    expect(method.status).toBe(405);
    expect(method.body.error.code).toBe("method_not_allowed");
  });

  it("enrolls gateways with a token shown once", async () => {
    const created = await call("POST", "/internal/gateway-tokens", { name: "edge-eu" });
    expect(created.status).toBe(201);
    expect(created.body.token).toMatch(/^tgw_[0-9A-Za-z]{40}$/);
    const list = await call("GET", "/internal/gateway-tokens");
    expect(list.body.data.map((t: { id: string }) => t.id)).toContain(created.body.id);
    expect(JSON.stringify(list.body)).not.toContain(created.body.token);
    const revoked = await call("DELETE", `/internal/gateway-tokens/${created.body.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked_at).not.toBeNull();
  });
});
