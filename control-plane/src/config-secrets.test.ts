import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { thrownMessage } from "@tollgate/testkit";
import { CONTROL_PLANE_SECRET_VARIABLES, loadConfig } from "./config.js";

describe("control-plane configuration errors never print the offending value", () => {
  // A secret pasted into the wrong variable must not reach the log through the error that refuses it.
  const secret = "sk-live-0123456789abcdefSECRET";
  const base = { PROXY_MASTER_KEY: "m".repeat(40) };
  for (const name of [
    "PORT",
    "GRPC_PORT",
    "LOG_LEVEL",
    "DATABASE_SCHEMA",
    "SYNC_HEARTBEAT_INTERVAL",
    "BRUTE_FORCE_PROTECTION",
    "BRUTE_FORCE_MAX_FAILED_ATTEMPTS",
    "GRPC_TLS_CERT_FILE",
    "ALERT_WEBHOOK_URL",
    "REQUEST_TIMEOUT",
    "GRPC_MAX_SESSIONS",
    "TRUSTED_PROXIES",
  ]) {
    it(name, () => {
      let message = "";
      try {
        loadConfig({
          ...base,
          [name]: secret,
          ...(name === "GRPC_TLS_CERT_FILE" ? { GRPC_TLS_KEY_FILE: secret } : {}),
        });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).not.toBe("");
      expect(message).not.toContain("SECRET");
      expect(message).not.toContain("0123456789abcdef");
    });
  }
});

describe("control-plane secret settings from files (NAME_FILE)", () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-config-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };
  const masterKey = "k".repeat(40);

  it("reads every secret from its _FILE, dropping one trailing newline", () => {
    const c = loadConfig({
      PROXY_MASTER_KEY_FILE: file("master", `${masterKey}\n`),
      DATABASE_URL_FILE: file("db", "postgres://tollgate:pw@db:5432/tollgate\n"),
      GOOGLE_CLIENT_ID: "id.apps.googleusercontent.com",
      GOOGLE_CLIENT_SECRET_FILE: file("google", "GOCSPX-file\n"),
      AUTH_BASE_URL: "https://proxy.internal",
      ALERT_WEBHOOK_SECRET_FILE: file("webhook", "whsec-file\n"),
      MCP_SECRET_JIRA_FILE: file("jira", "jira-file\n"),
    });
    expect(c.masterKey).toBe(masterKey);
    expect(c.databaseUrl).toBe("postgres://tollgate:pw@db:5432/tollgate");
    expect(c.sso?.clientSecret).toBe("GOCSPX-file");
    expect(c.alerts.webhookSecret).toBe("whsec-file");
    expect(c.mcpSecrets.get("MCP_SECRET_JIRA")).toBe("jira-file");
  });

  it("still validates a value read from a file, without printing it", () => {
    const message = thrownMessage(() => loadConfig({ PROXY_MASTER_KEY_FILE: file("short", "too-short-9d8c\n") }));
    expect(message).toMatch(/^PROXY_MASTER_KEY must be at least 32 characters long/);
    expect(message).not.toContain("too-short-9d8c");
  });

  it.each(CONTROL_PLANE_SECRET_VARIABLES)(
    "refuses %s and %s_FILE both set, naming both and printing neither",
    (name) => {
      const env = {
        PROXY_MASTER_KEY: masterKey,
        [name]: "direct-value-7c1d",
        [`${name}_FILE`]: file(name, "file-value-4b9e\n"),
      };
      const message = thrownMessage(() => loadConfig(env));
      expect(message).toBe(
        `${name} and ${name}_FILE are both set: set one of them (the value, or the file holding it)`,
      );
    },
  );

  it("names the variable of an unreadable or empty file", () => {
    expect(thrownMessage(() => loadConfig({ PROXY_MASTER_KEY_FILE: join(dir, "absent") }))).toMatch(
      /^PROXY_MASTER_KEY_FILE points to ".*absent", which cannot be read \(ENOENT\)$/,
    );
    expect(
      thrownMessage(() => loadConfig({ PROXY_MASTER_KEY: masterKey, DATABASE_URL_FILE: file("empty", "") })),
    ).toMatch(/^DATABASE_URL_FILE points to .*, which is empty$/);
  });
});

describe("control-plane TRUSTED_PROXIES", () => {
  const base = { PROXY_MASTER_KEY: "m".repeat(40) };
  it("parses addresses and CIDRs of both families, default none, and names the variable on a bad entry", () => {
    expect(loadConfig({ ...base, TRUSTED_PROXIES: " 10.0.0.0/8, 192.168.1.1 ,fd00::/8,, " }).trustedProxies).toEqual([
      "10.0.0.0/8",
      "192.168.1.1",
      "fd00::/8",
    ]);
    expect(loadConfig(base).trustedProxies).toEqual([]);
    expect(thrownMessage(() => loadConfig({ ...base, TRUSTED_PROXIES: "10.0.0.0/8,ingress.internal" }))).toMatch(
      /^TRUSTED_PROXIES must be a comma-separated list of IP addresses and CIDRs/,
    );
  });
});

describe("control-plane boolean settings: true/false or 1/0", () => {
  const base = { PROXY_MASTER_KEY: "m".repeat(40) };
  it("BRUTE_FORCE_PROTECTION and SYNC_TRACE take true, false, 1, 0", () => {
    expect(loadConfig({ ...base, BRUTE_FORCE_PROTECTION: "0" }).bruteForce.enabled).toBe(false);
    expect(loadConfig({ ...base, BRUTE_FORCE_PROTECTION: "false" }).bruteForce.enabled).toBe(false);
    expect(loadConfig({ ...base, BRUTE_FORCE_PROTECTION: "1" }).bruteForce.enabled).toBe(true);
    expect(loadConfig(base).bruteForce.enabled).toBe(true);
    expect(loadConfig({ ...base, SYNC_TRACE: "true" }).syncTrace).toBe(true);
    expect(loadConfig({ ...base, SYNC_TRACE: "0" }).syncTrace).toBe(false);
    expect(loadConfig(base).syncTrace).toBe(false);
  });

  it("refuses on/off and any other spelling, naming the variable", () => {
    expect(thrownMessage(() => loadConfig({ ...base, BRUTE_FORCE_PROTECTION: "off" }))).toBe(
      'BRUTE_FORCE_PROTECTION must be true or false (or 1 or 0), got "off"',
    );
    expect(thrownMessage(() => loadConfig({ ...base, SYNC_TRACE: "True" }))).toMatch(
      /^SYNC_TRACE must be true or false/,
    );
  });
});
