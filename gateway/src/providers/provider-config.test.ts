import { describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "@tollgate/shared";
import { loadConfig } from "../config.js";
import { tempDir } from "../test-support/temp-dir.js";
import { loadProviders, parseProvidersFile } from "./provider-config.js";
import { ProviderRegistry } from "./registry.js";

const base = { GATEWAY_TOKEN: "gwt_abc" };
const parse = (text: string, env: Record<string, string> = {}) => parseProvidersFile(env, "providers.yaml", text, 60_000);

describe("providers configuration", () => {
  it("reads a YAML providers file with the credential from the named variable", () => {
    const [p] = parse(
      `providers:
  - name: claude
    kind: anthropic
    api_key_env: MY_ANTHROPIC_KEY
    models: [claude-opus-4-1]
    model_prefixes: ["anthropic/"]
    model_patterns: ["claude-*"]
    timeout: 30s
`,
      { MY_ANTHROPIC_KEY: "sk-ant-1" },
    );
    expect(p).toEqual({
      name: "claude",
      kind: "anthropic",
      baseUrl: "https://api.anthropic.com",
      apiKey: "sk-ant-1",
      models: ["claude-opus-4-1"],
      modelPatterns: ["anthropic/*", "claude-*"],
      timeoutMs: 30_000,
    });
  });

  it("reads JSON too, and sorts globs in models into patterns", () => {
    const [p] = parse(JSON.stringify({ providers: [{ name: "local", kind: "openai", base_url: "http://127.0.0.1:8000/v1/", models: ["llama-3", "qwen-*"] }] }));
    expect(p).toMatchObject({ baseUrl: "http://127.0.0.1:8000/v1", apiKey: undefined, models: ["llama-3"], modelPatterns: ["qwen-*"], timeoutMs: 60_000 });
  });

  it.each([
    [`providers: [{name: a, kind: gemini, models: ["*"]}]`, "kind gemini is declared but not implemented"],
    [`providers: [{name: a, kind: azure-openai, models: ["*"]}]`, "kind azure-openai is declared but not implemented"],
    [`providers: [{name: a, kind: bedrock, models: ["*"]}]`, "kind must be one of"],
    [`providers: [{name: a, kind: openai, api_key_env: NOT_SET_ANYWHERE, models: ["*"]}]`, "api_key_env names NOT_SET_ANYWHERE, which is not set"],
    [`providers: [{name: a, kind: openai}]`, "serves no model"],
    [`providers: [{name: a, kind: openai, models: ["*"]}, {name: a, kind: openai, models: ["*"]}]`, "declared twice"],
    [`providers: [{name: "A B", kind: openai, models: ["*"]}]`, "name must be"],
    [`providers: [{name: a, kind: openai, models: ["*"], timeout: soon}]`, "timeout must be a positive duration"],
    [`providers: [{name: a, kind: openai, models: ["*"], apikey: x}]`, 'unknown field "apikey"'],
    [`providers: [{name: a, kind: openai, model_prefixes: ["x*"]}]`, "model_prefixes are literal prefixes"],
    [`nope: 1`, 'must hold {"providers": [...]}'],
    [`providers: [`, "is not valid YAML or JSON"],
  ])("refuses %s", (text, message) => {
    expect(() => parse(text)).toThrow(ConfigError);
    expect(() => parse(text)).toThrow(message);
  });

  it("never puts the credential in an error message", () => {
    const text = `providers: [{name: a, kind: openai, api_key_env: K, base_url: "ftp://x"}]`;
    expect(() => parse(text, { K: "sk-very-secret" })).toThrow(/base_url must be http/);
    try {
      parse(text, { K: "sk-very-secret" });
    } catch (err) {
      expect((err as Error).message).not.toContain("sk-very-secret");
    }
  });

  it("adds the env shorthands after the file: Claude models to Anthropic, everything else to OpenAI", () => {
    const dir = tempDir();
    try {
      const file = join(dir.path, "providers.json");
      writeFileSync(file, JSON.stringify({ providers: [{ name: "local", kind: "openai", base_url: "http://127.0.0.1:8000/v1", models: ["llama-3"] }] }));
      const c = loadConfig({ ...base, PROVIDERS_FILE: file, OPENAI_API_KEY: "sk-o", ANTHROPIC_API_KEY: "sk-a" });
      expect(c.providers.map((p) => [p.name, p.kind, p.baseUrl])).toEqual([
        ["local", "openai", "http://127.0.0.1:8000/v1"],
        ["anthropic", "anthropic", "https://api.anthropic.com"],
        ["openai", "openai", "https://api.openai.com/v1"],
      ]);
      expect(loadProviders({ ANTHROPIC_BASE_URL: "http://127.0.0.1:9/" }, 1_000)).toMatchObject([
        { name: "anthropic", baseUrl: "http://127.0.0.1:9", apiKey: undefined, modelPatterns: ["claude-*"] },
      ]);
      expect(() => loadConfig({ ...base, PROVIDERS_FILE: join(dir.path, "missing.yaml") })).toThrow(/PROVIDERS_FILE=.*cannot be read/);
    } finally {
      dir.remove();
    }
  });

  it("routes exact names first, then patterns in provider order, else nothing", async () => {
    const registry = new ProviderRegistry(
      parse(`providers:
  - {name: first, kind: openai, base_url: "http://127.0.0.1:1/v1", model_patterns: ["gpt-*"]}
  - {name: second, kind: anthropic, base_url: "http://127.0.0.1:1", models: [gpt-special], model_patterns: ["claude-*", "gpt-4*"]}
`),
    );
    try {
      const route = (m: string) => registry.route(m)?.name;
      expect(route("gpt-4o")).toBe("first");
      expect(route("gpt-special")).toBe("second");
      expect(route("claude-x")).toBe("second");
      expect(route("llama")).toBeUndefined();
    } finally {
      await registry.close();
    }
  });
});
