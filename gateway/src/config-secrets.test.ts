import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { thrownMessage } from "@tollgate/testkit";
import { GATEWAY_SECRET_VARIABLES, loadConfig } from "./config.js";

const dir = mkdtempSync(join(tmpdir(), "gateway-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A secret file as a mounted Kubernetes or Docker secret would be. */
function secretFile(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

describe("secret settings from files (NAME_FILE)", () => {
  it("reads GATEWAY_TOKEN_FILE once, dropping one trailing newline only", () => {
    expect(loadConfig({ GATEWAY_TOKEN_FILE: secretFile("token", "gwt_from_file\n") }).gatewayToken).toBe(
      "gwt_from_file",
    );
    expect(loadConfig({ GATEWAY_TOKEN_FILE: secretFile("token-crlf", "gwt_crlf\r\n") }).gatewayToken).toBe("gwt_crlf");
    expect(loadConfig({ GATEWAY_TOKEN_FILE: secretFile("token-bare", " gwt bare") }).gatewayToken).toBe(" gwt bare");
  });

  it("reads each upstream provider key from its _FILE", () => {
    const c = loadConfig({
      GATEWAY_TOKEN: "gwt_x",
      OPENAI_API_KEY_FILE: secretFile("openai", "sk-openai-file\n"),
      ANTHROPIC_API_KEY_FILE: secretFile("anthropic", "sk-ant-file\n"),
      GEMINI_API_KEY_FILE: secretFile("gemini", "gemini-file\n"),
    });
    expect(Object.fromEntries(c.providers.map((p) => [p.name, p.apiKey]))).toEqual({
      openai: "sk-openai-file",
      anthropic: "sk-ant-file",
      gemini: "gemini-file",
    });
  });

  it("resolves a providers file's api_key_env from <name>_FILE", () => {
    const providers = secretFile(
      "providers.json",
      JSON.stringify({ providers: [{ name: "corp", kind: "openai", api_key_env: "CORP_KEY", models: ["*"] }] }),
    );
    const c = loadConfig({
      GATEWAY_TOKEN: "gwt_x",
      PROVIDERS_FILE: providers,
      CORP_KEY_FILE: secretFile("corp", "corp-key-from-file\n"),
    });
    expect(c.providers.find((p) => p.name === "corp")?.apiKey).toBe("corp-key-from-file");
  });

  it("reads MCP_SECRET_<NAME>_FILE", () => {
    const c = loadConfig({ GATEWAY_TOKEN: "gwt_x", MCP_SECRET_GITHUB_FILE: secretFile("gh", "ghp_file\n") });
    expect(c.mcp.secrets.get("MCP_SECRET_GITHUB")).toBe("ghp_file");
  });

  it.each(GATEWAY_SECRET_VARIABLES)(
    "refuses %s and %s_FILE both set, naming both and printing neither value",
    (name) => {
      const env = {
        GATEWAY_TOKEN: "gwt_base",
        [name]: "direct-value-7c1d",
        [`${name}_FILE`]: secretFile(name, "file-value-4b9e\n"),
      };
      const message = thrownMessage(() => loadConfig(env));
      expect(message).toContain(`${name} and ${name}_FILE are both set`);
      expect(message).not.toContain("direct-value-7c1d");
      expect(message).not.toContain("file-value-4b9e");
    },
  );

  it("names the variable of a missing or empty file", () => {
    expect(thrownMessage(() => loadConfig({ GATEWAY_TOKEN_FILE: join(dir, "absent") }))).toMatch(
      /^GATEWAY_TOKEN_FILE points to ".*absent", which cannot be read \(ENOENT\)$/,
    );
    expect(thrownMessage(() => loadConfig({ GATEWAY_TOKEN_FILE: secretFile("empty", "\n") }))).toMatch(
      /^GATEWAY_TOKEN_FILE points to .*, which is empty$/,
    );
  });
});

describe("boolean settings: true/false or 1/0", () => {
  const base = { GATEWAY_TOKEN: "gwt_x" };
  const read = {
    DISABLE_AUTH: (env: Record<string, string>) => loadConfig({ ...base, ...env }).disableAuth,
    BRUTE_FORCE_PROTECTION: (env: Record<string, string>) => loadConfig({ ...base, ...env }).bruteForce.enabled,
    SYNC_TRACE: (env: Record<string, string>) => loadConfig({ ...base, ...env }).syncTrace,
  };
  const defaults = { DISABLE_AUTH: false, BRUTE_FORCE_PROTECTION: true, SYNC_TRACE: false };

  for (const [name, get] of Object.entries(read) as Array<[keyof typeof read, (typeof read)[keyof typeof read]]>) {
    it(`${name} takes true, false, 1 and 0, and its default when unset or empty`, () => {
      expect(get({ [name]: "true" })).toBe(true);
      expect(get({ [name]: "1" })).toBe(true);
      expect(get({ [name]: "false" })).toBe(false);
      expect(get({ [name]: "0" })).toBe(false);
      expect(get({})).toBe(defaults[name]);
      expect(get({ [name]: "" })).toBe(defaults[name]);
    });

    it(`${name} refuses anything else with an error naming it`, () => {
      for (const v of ["on", "off", "yes", "TRUE", " true", "2"]) {
        expect(thrownMessage(() => get({ [name]: v }))).toMatch(
          new RegExp(`^${name} must be true or false \\(or 1 or 0\\), got `),
        );
      }
      expect(thrownMessage(() => get({ [name]: "off" }))).toBe(`${name} must be true or false (or 1 or 0), got "off"`);
      expect(thrownMessage(() => get({ [name]: "sk-live-SECRET" }))).not.toContain("SECRET");
    });
  }
});
