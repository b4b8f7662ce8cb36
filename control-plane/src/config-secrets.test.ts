import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";

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
