import { describe, expect, it } from "vitest";
import { hostname } from "node:os";
import { ConfigError } from "@tollgate/shared";
import { loadConfig } from "./config.js";

const base = { GATEWAY_TOKEN: "gwt_abc" };

describe("loadConfig", () => {
  it("applies defaults and picks the mock provider without OpenAI settings", () => {
    const c = loadConfig(base);
    expect(c).toMatchObject({
      controlPlaneUrl: "http://127.0.0.1:50051",
      gatewayName: hostname(),
      host: "0.0.0.0",
      port: 8080,
      statusPort: 8081,
      providers: [
        {
          name: "mock",
          kind: "mock",
          baseUrl: "",
          apiKey: undefined,
          models: [],
          modelPatterns: ["*"],
          timeoutMs: 600_000,
        },
      ],
      upstreamTimeoutMs: 600_000,
      maxBodyBytes: 32 * 1024 * 1024,
      logLevel: "info",
      controlPlaneTls: {},
      maxStalenessMs: null,
      syncHeartbeatIntervalMs: 5_000,
      trustedProxies: [],
      authBypassPaths: [],
      disableAuth: false,
      maxHeaderBytes: 16 * 1024,
    });
    expect(c.dataDir).toMatch(/\.data\/gateway$/);
  });

  it("uses api.openai.com when only OPENAI_API_KEY is set, and a local base URL without a key", () => {
    expect(loadConfig({ ...base, OPENAI_API_KEY: "sk-x" }).providers).toEqual([
      {
        name: "openai",
        kind: "openai",
        baseUrl: "https://api.openai.com/v1",
        apiKey: "sk-x",
        models: [],
        modelPatterns: ["*"],
        timeoutMs: 600_000,
      },
    ]);
    expect(loadConfig({ ...base, OPENAI_BASE_URL: "http://127.0.0.1:9000/v1/" }).providers).toMatchObject([
      { name: "openai", kind: "openai", baseUrl: "http://127.0.0.1:9000/v1", apiKey: undefined },
    ]);
  });

  it("parses durations and sizes", () => {
    const c = loadConfig({ ...base, UPSTREAM_TIMEOUT: "30s", MAX_BODY_BYTES: "1MiB" });
    expect(c.upstreamTimeoutMs).toBe(30_000);
    expect(c.maxBodyBytes).toBe(1024 * 1024);
    expect(loadConfig({ ...base, MAX_BODY_BYTES: "2048" }).maxBodyBytes).toBe(2048);
  });

  it("parses MAX_STALENESS (default never) and SYNC_HEARTBEAT_INTERVAL", () => {
    expect(loadConfig({ ...base, MAX_STALENESS: "10m", SYNC_HEARTBEAT_INTERVAL: "2s" })).toMatchObject({
      maxStalenessMs: 600_000,
      syncHeartbeatIntervalMs: 2_000,
    });
    expect(loadConfig({ ...base, MAX_STALENESS: "never" }).maxStalenessMs).toBeNull();
    expect(loadConfig({ ...base, MAX_STALENESS: "" }).maxStalenessMs).toBeNull();
  });

  it("parses USAGE_JOURNAL_FSYNC (default off) and refuses other values, naming the variable", () => {
    expect(loadConfig(base).usageJournalFsync).toBe(false);
    expect(loadConfig({ ...base, USAGE_JOURNAL_FSYNC: "on" }).usageJournalFsync).toBe(true);
    expect(() => loadConfig({ ...base, USAGE_JOURNAL_FSYNC: "yes" })).toThrow(/USAGE_JOURNAL_FSYNC/);
  });

  it("parses TRUSTED_PROXIES as addresses and CIDRs of both families, default none", () => {
    expect(loadConfig({ ...base, TRUSTED_PROXIES: " 10.0.0.0/8, 192.168.1.1 ,fd00::/8,, " }).trustedProxies).toEqual([
      "10.0.0.0/8",
      "192.168.1.1",
      "fd00::/8",
    ]);
    expect(loadConfig({ ...base, TRUSTED_PROXIES: "" }).trustedProxies).toEqual([]);
    expect(() => loadConfig({ ...base, TRUSTED_PROXIES: "lb.internal" })).toThrow(
      "TRUSTED_PROXIES must be a comma-separated list of IP addresses and CIDRs such as 10.0.0.0/8,192.168.1.1,fd00::/8; one entry (a value of 11 characters, not shown) is neither",
    );
  });

  it("parses AUTH_BYPASS_PATHS as exact paths, trailing slash dropped, default none", () => {
    expect(loadConfig({ ...base, AUTH_BYPASS_PATHS: " /v1/models, /status/ ,,/v1/models" }).authBypassPaths).toEqual([
      "/v1/models",
      "/status",
    ]);
    expect(loadConfig({ ...base, AUTH_BYPASS_PATHS: "" }).authBypassPaths).toEqual([]);
    expect(() => loadConfig({ ...base, AUTH_BYPASS_PATHS: "/v1/models,v1/chat/completions" })).toThrow(
      'AUTH_BYPASS_PATHS must be a comma-separated list of paths starting with "/", such as /v1/models; one entry (a value of 19 characters, not shown) does not',
    );
    for (const bad of ["/v1/*", "/v1/models?x=1", "/a b"])
      expect(() => loadConfig({ ...base, AUTH_BYPASS_PATHS: bad })).toThrow("exact paths");
  });

  it("parses MAX_HEADER_BYTES within 1KiB..1MiB", () => {
    expect(loadConfig({ ...base, MAX_HEADER_BYTES: "32KiB" }).maxHeaderBytes).toBe(32 * 1024);
    expect(loadConfig({ ...base, MAX_HEADER_BYTES: "8192" }).maxHeaderBytes).toBe(8192);
    for (const v of ["512", "2MiB", "big"])
      expect(() => loadConfig({ ...base, MAX_HEADER_BYTES: v })).toThrow("MAX_HEADER_BYTES");
  });

  it("names the variable at fault", () => {
    const bad: Array<[Record<string, string>, string]> = [
      [{}, "GATEWAY_TOKEN"],
      [{ ...base, PORT: "http" }, "PORT"],
      [{ ...base, STATUS_PORT: "70000" }, "STATUS_PORT"],
      [{ ...base, CONTROL_PLANE_URL: "localhost:50051" }, "CONTROL_PLANE_URL"],
      [{ ...base, OPENAI_BASE_URL: "ftp://x" }, "OPENAI_BASE_URL"],
      [{ ...base, UPSTREAM_TIMEOUT: "10" }, "UPSTREAM_TIMEOUT"],
      [{ ...base, MAX_BODY_BYTES: "lots" }, "MAX_BODY_BYTES"],
      [{ ...base, LOG_LEVEL: "loud" }, "LOG_LEVEL"],
      [{ ...base, MAX_STALENESS: "10" }, "MAX_STALENESS"],
      [{ ...base, MAX_STALENESS: "0s" }, "MAX_STALENESS"],
      [{ ...base, SYNC_HEARTBEAT_INTERVAL: "often" }, "SYNC_HEARTBEAT_INTERVAL"],
      [{ ...base, SYNC_HEARTBEAT_INTERVAL: "0ms" }, "SYNC_HEARTBEAT_INTERVAL"],
      [{ ...base, TRUSTED_PROXIES: "10.0.0.0/8,lb.internal" }, "TRUSTED_PROXIES"],
      [{ ...base, TRUSTED_PROXIES: "10.0.0.0/33" }, "TRUSTED_PROXIES"],
      [{ ...base, AUTH_BYPASS_PATHS: "healthz" }, "AUTH_BYPASS_PATHS"],
      [{ ...base, DISABLE_AUTH: "yes" }, "DISABLE_AUTH"],
      [{ ...base, MAX_HEADER_BYTES: "0" }, "MAX_HEADER_BYTES"],
    ];
    for (const [env, name] of bad) {
      expect(() => loadConfig(env)).toThrow(ConfigError);
      expect(() => loadConfig(env)).toThrow(name);
    }
    expect(() => loadConfig({})).toThrow("POST /internal/gateway-tokens");
  });
});

describe("configuration errors never print the offending value", () => {
  // A secret pasted into the wrong variable must not reach the log through the error that refuses it.
  const secret = "sk-live-0123456789abcdefSECRET";
  for (const name of [
    "DISABLE_AUTH",
    "MAX_HEADER_BYTES",
    "REQUEST_TIMEOUT",
    "UPSTREAM_TIMEOUT",
    "MAX_BODY_BYTES",
    "TRUSTED_PROXIES",
    "AUTH_BYPASS_PATHS",
    "PORT",
    "LOG_LEVEL",
    "CONTROL_PLANE_URL",
    "MAX_STALENESS",
    "SYNC_HEARTBEAT_INTERVAL",
    "BRUTE_FORCE_TTL",
    "GATEWAY_TLS_CERT_FILE",
    "LOG_RETENTION",
    "MAX_CONNECTIONS",
  ]) {
    it(`${name}`, () => {
      let message = "";
      try {
        loadConfig({ GATEWAY_TOKEN: "gwt_x", [name]: secret });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).not.toBe("");
      expect(message).not.toContain("SECRET");
      expect(message).not.toContain("0123456789abcdef");
    });
  }
});
