import { describe, expect, it } from "vitest";
import { GOOGLE_ISSUER, loadConfig } from "./config.js";

const base = { PROXY_MASTER_KEY: "x".repeat(32) };
const sso = {
  GOOGLE_CLIENT_ID: "id.apps.googleusercontent.com",
  GOOGLE_CLIENT_SECRET: "GOCSPX-secret",
  AUTH_BASE_URL: "https://proxy.internal/",
};

describe("SSO configuration", () => {
  it("is off without GOOGLE_CLIENT_ID", () => {
    expect(loadConfig(base).sso).toBeUndefined();
  });

  it("defaults to Google and derives the redirect URI from AUTH_BASE_URL", () => {
    const config = loadConfig({
      ...base,
      ...sso,
      SSO_ALLOWED_DOMAINS: "Example.com, example.org",
      ADMIN_EMAILS: "Boss@Example.com",
    });
    expect(config.sso).toMatchObject({
      issuer: GOOGLE_ISSUER,
      redirectUri: "https://proxy.internal/auth/callback",
      allowedDomains: ["example.com", "example.org"],
      stateTtlMs: 600_000,
    });
    expect(config.adminEmails).toEqual(["boss@example.com"]);
  });

  it("stops the start with a message naming the variable", () => {
    expect(() => loadConfig({ ...base, GOOGLE_CLIENT_ID: "id" })).toThrow(/GOOGLE_CLIENT_SECRET/);
    expect(() => loadConfig({ ...base, GOOGLE_CLIENT_ID: "id", GOOGLE_CLIENT_SECRET: "s" })).toThrow(/AUTH_BASE_URL/);
    expect(() => loadConfig({ ...base, GOOGLE_CLIENT_SECRET: "s" })).toThrow(/GOOGLE_CLIENT_ID/);
    expect(() => loadConfig({ ...base, ...sso, AUTH_BASE_URL: "http://proxy.internal" })).toThrow(
      /AUTH_BASE_URL must be an https URL/,
    );
    expect(() => loadConfig({ ...base, ...sso, OIDC_ISSUER: "http://idp.example.com" })).toThrow(/OIDC_ISSUER/);
    expect(() => loadConfig({ ...base, ...sso, SSO_ALLOWED_DOMAINS: "not a domain" })).toThrow(/SSO_ALLOWED_DOMAINS/);
    expect(() => loadConfig({ ...base, ...sso, SSO_DOMAIN_ORGS: "example.com=team_1" })).toThrow(/SSO_DOMAIN_ORGS/);
    expect(() => loadConfig({ ...base, ...sso, SSO_DEFAULT_ORG: "acme" })).toThrow(/SSO_DEFAULT_ORG/);
    expect(() => loadConfig({ ...base, ...sso, SSO_KEY_RPM_LIMIT: "-1" })).toThrow(/SSO_KEY_RPM_LIMIT/);
    expect(() => loadConfig({ ...base, ...sso, SSO_KEY_EXPIRES_IN: "soon" })).toThrow(/SSO_KEY_EXPIRES_IN/);
    expect(() => loadConfig({ ...base, ADMIN_EMAILS: "nobody" })).toThrow(/ADMIN_EMAILS/);
  });

  it("accepts plain http on loopback, for local development", () => {
    const config = loadConfig({
      ...base,
      ...sso,
      AUTH_BASE_URL: "http://127.0.0.1:8000",
      OIDC_ISSUER: "http://localhost:9000",
    });
    expect(config.sso?.redirectUri).toBe("http://127.0.0.1:8000/auth/callback");
  });
});
