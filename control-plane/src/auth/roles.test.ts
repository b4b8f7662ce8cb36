import { describe, expect, it } from "vitest";
import { authorize, MASTER_ACTOR, overTeamLimits, roleAtSignIn, type Actor } from "./roles.js";

const token = (role: "admin" | "read_only"): Actor => ({ kind: "admin_token", id: "adt_x", role, org_id: "org_a" });
const member: Actor = { kind: "user", id: "user_me", role: "member", org_id: "org_a" };

describe("roles", () => {
  it("lets the master key do everything and only it create organizations", () => {
    expect(authorize(MASTER_ACTOR, "POST", "/internal/orgs").allowed).toBe(true);
    expect(authorize(token("admin"), "POST", "/internal/orgs").allowed).toBe(false);
    expect(authorize(token("admin"), "DELETE", "/internal/teams/team_x").allowed).toBe(true);
  });

  it("lets a read_only token read only", () => {
    expect(authorize(token("read_only"), "GET", "/internal/api-keys").allowed).toBe(true);
    for (const method of ["POST", "PUT", "PATCH", "DELETE"])
      expect(authorize(token("read_only"), method, "/internal/teams").allowed).toBe(false);
  });

  it("lets a member reach their own keys and user only", () => {
    for (const [method, path] of [
      ["GET", "/internal/api-keys"],
      ["POST", "/internal/api-keys"],
      ["POST", "/internal/api-keys/ak_x/rotate"],
      ["POST", "/internal/api-keys/ak_x/deactivate"],
      ["POST", "/internal/api-keys/ak_x/ephemeral-tokens"],
      ["DELETE", "/internal/api-keys/ak_x"],
      ["GET", "/internal/users/user_me"],
    ] as const) {
      expect(authorize(member, method, path).allowed, `${method} ${path}`).toBe(true);
    }
    for (const [method, path] of [
      ["PATCH", "/internal/api-keys/ak_x"],
      ["POST", "/internal/api-keys/ak_x/activate"],
      ["POST", "/internal/api-keys/bulk"],
      ["GET", "/internal/users/user_other"],
      ["GET", "/internal/teams"],
      ["GET", "/internal/gateways"],
      ["PUT", "/internal/model-prices/openai/gpt-4o"],
    ] as const) {
      expect(authorize(member, method, path).allowed, `${method} ${path}`).toBe(false);
    }
  });

  it("keeps a member's key within the team's limits", () => {
    const team = { tpm_limit: 1000, daily_token_limit: 50_000 };
    expect(overTeamLimits({ rpm_limit: null, tpm_limit: 1000, tokens_per_day_limit: null }, team)).toBeUndefined();
    expect(overTeamLimits({ rpm_limit: null, tpm_limit: 1001, tokens_per_day_limit: null }, team)).toEqual({
      field: "tpm_limit",
      limit: 1000,
    });
    expect(overTeamLimits({ rpm_limit: null, tpm_limit: null, tokens_per_day_limit: 50_001 }, team)?.field).toBe(
      "tokens_per_day_limit",
    );
    expect(
      overTeamLimits({ rpm_limit: null, tpm_limit: 10 ** 9, tokens_per_day_limit: null }, undefined),
    ).toBeUndefined();
  });

  it("takes the sign-in role from ADMIN_EMAILS, the admin group, else the database", () => {
    const config = { adminEmails: ["boss@example.com"], adminGroup: "tollgate-admins" };
    expect(roleAtSignIn({ email: "Boss@Example.com", groups: [], stored: "member" }, config)).toBe("admin");
    expect(roleAtSignIn({ email: "ann@example.com", groups: ["tollgate-admins"], stored: undefined }, config)).toBe(
      "admin",
    );
    expect(roleAtSignIn({ email: "ann@example.com", groups: ["other"], stored: "admin" }, config)).toBe("admin");
    expect(roleAtSignIn({ email: "ann@example.com", groups: [], stored: undefined }, config)).toBe("member");
  });
});
