import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "@tollgate/shared";
import { loadConfig } from "../config.js";
import { tempDir } from "@tollgate/testkit";
import { loadProviders, parseProvidersFile } from "./provider-config.js";
import { ProviderRegistry } from "./registry.js";

const base = { GATEWAY_TOKEN: "gwt_abc" };
const parse = (text: string, env: Record<string, string> = {}) =>
  parseProvidersFile(env, "providers.yaml", text, 60_000);

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
      modelPatterns: ["claude-*"],
      modelPrefixes: ["anthropic/"],
      timeoutMs: 30_000,
    });
  });

  it("reads JSON too, and sorts globs in models into patterns", () => {
    const [p] = parse(
      JSON.stringify({
        providers: [
          { name: "local", kind: "openai", base_url: "http://127.0.0.1:8000/v1/", models: ["llama-3", "qwen-*"] },
        ],
      }),
    );
    expect(p).toMatchObject({
      baseUrl: "http://127.0.0.1:8000/v1",
      apiKey: undefined,
      models: ["llama-3"],
      modelPatterns: ["qwen-*"],
      timeoutMs: 60_000,
    });
  });

  it.each([
    [`providers: [{name: a, kind: azure-openai, models: ["*"]}]`, "kind azure-openai needs resource"],
    [
      `providers: [{name: a, kind: azure-openai, resource: x, base_url: "https://x.openai.azure.com", models: ["*"]}]`,
      "set resource or base_url, not both",
    ],
    [
      `providers: [{name: a, kind: azure-openai, resource: "x.evil.com/", models: ["*"]}]`,
      "resource must be the Azure OpenAI resource name",
    ],
    [
      `providers: [{name: a, kind: azure-openai, resource: x, api_version: latest, models: ["*"]}]`,
      "api_version must be a date",
    ],
    [
      `providers: [{name: a, kind: azure-openai, resource: x, deployments: {gpt-4o: "a/b"}}]`,
      "deployments.gpt-4o must be a deployment name",
    ],
    [
      `providers: [{name: a, kind: azure-openai, resource: x, deployments: [gpt-4o]}]`,
      "deployments must map model names",
    ],
    [`providers: [{name: a, kind: openai, resource: x, models: ["*"]}]`, "resource applies to kind azure-openai only"],
    [
      `providers: [{name: a, kind: gemini, api_version: v1, models: ["*"]}]`,
      "api_version applies to kind azure-openai only",
    ],
    [`providers: [{name: a, kind: openai, models: ["*"], fallbacks: b}]`, "fallbacks must be a list"],
    [
      `providers: [{name: a, kind: openai, models: ["*"], fallbacks: [b], max_attempts: 9}]`,
      "max_attempts must be an integer from 1 to 5",
    ],
    [`providers: [{name: a, kind: openai, models: ["*"], max_attempts: 2}]`, "max_attempts needs fallbacks"],
    [
      `providers: [{name: a, kind: openai, models: ["*"], model_fallbacks: [b]}]`,
      "model_fallbacks must map model names",
    ],
    [
      `providers: [{name: a, kind: openai, models: ["*"], model_fallbacks: {gpt-4o: [""]}}]`,
      "model_fallbacks.gpt-4o must be a list",
    ],
    [
      `providers: [{name: a, kind: openai, model_prefixes: ["a/"], strip_model_prefix: "no"}]`,
      "strip_model_prefix must be true or false",
    ],
    [`providers: [{name: a, kind: bedrock, models: ["*"]}]`, "kind must be one of"],
    [
      `providers: [{name: a, kind: openai, api_key_env: NOT_SET_ANYWHERE, models: ["*"]}]`,
      "api_key_env names NOT_SET_ANYWHERE, which is not set",
    ],
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

  it("refuses a base_url with a user, password, query or fragment, without echoing it", () => {
    for (const [url, message] of [
      ["https://user:hunter2@api.example.com/v1", "must not carry a user or password"],
      ["https://api.example.com/v1?key=hunter2", "must not have a query"],
      ["not a url hunter2", "is not a URL"],
    ] as const) {
      const text = JSON.stringify({ providers: [{ name: "a", kind: "openai", base_url: url, models: ["x"] }] });
      expect(() => parse(text)).toThrow(message);
      try {
        parse(text);
      } catch (err) {
        expect((err as Error).message).not.toContain("hunter2");
      }
    }
  });

  it("adds the env shorthands after the file: Claude models to Anthropic, everything else to OpenAI", () => {
    const dir = tempDir();
    try {
      const file = join(dir.path, "providers.json");
      writeFileSync(
        file,
        JSON.stringify({
          providers: [{ name: "local", kind: "openai", base_url: "http://127.0.0.1:8000/v1", models: ["llama-3"] }],
        }),
      );
      const c = loadConfig({ ...base, PROVIDERS_FILE: file, OPENAI_API_KEY: "sk-o", ANTHROPIC_API_KEY: "sk-a" });
      expect(c.providers.map((p) => [p.name, p.kind, p.baseUrl])).toEqual([
        ["local", "openai", "http://127.0.0.1:8000/v1"],
        ["anthropic", "anthropic", "https://api.anthropic.com"],
        ["openai", "openai", "https://api.openai.com/v1"],
      ]);
      expect(loadProviders({ ANTHROPIC_BASE_URL: "http://127.0.0.1:9/" }, 1_000)).toMatchObject([
        { name: "anthropic", baseUrl: "http://127.0.0.1:9", apiKey: undefined, modelPatterns: ["claude-*"] },
      ]);
      expect(() => loadConfig({ ...base, PROVIDERS_FILE: join(dir.path, "missing.yaml") })).toThrow(
        /PROVIDERS_FILE=.*cannot be read/,
      );
    } finally {
      dir.remove();
    }
  });

  it("reads azure-openai (resource, deployments, api_version) and gemini entries with their defaults", () => {
    const [azure, azureV1, gemini] = parse(
      `providers:
  - name: azure-eu
    kind: azure-openai
    resource: contoso-eu
    api_key_env: AZ_KEY
    deployments: {gpt-4o: prod-gpt4o}
    model_patterns: ["gpt-4o-*"]
  - {name: azure-v1, kind: azure-openai, base_url: "https://proxy.example/az/", api_version: v1, models: [gpt-4.1]}
  - {name: gem, kind: gemini, api_key_env: G_KEY, model_prefixes: ["gemini/"], strip_model_prefix: false, fallbacks: [azure-eu], max_attempts: 2}
`,
      { AZ_KEY: "az-secret", G_KEY: "g-secret" },
    );
    expect(azure).toEqual({
      name: "azure-eu",
      kind: "azure-openai",
      baseUrl: "https://contoso-eu.openai.azure.com",
      apiKey: "az-secret",
      // The deployment map names the models it serves.
      models: ["gpt-4o"],
      modelPatterns: ["gpt-4o-*"],
      timeoutMs: 60_000,
      apiVersion: "2024-10-21",
      deployments: { "gpt-4o": "prod-gpt4o" },
    });
    expect(azureV1).toMatchObject({ baseUrl: "https://proxy.example/az", apiVersion: "v1", models: ["gpt-4.1"] });
    expect(gemini).toEqual({
      name: "gem",
      kind: "gemini",
      baseUrl: "https://generativelanguage.googleapis.com/v1beta/openai",
      apiKey: "g-secret",
      models: [],
      modelPatterns: [],
      modelPrefixes: ["gemini/"],
      stripModelPrefix: false,
      fallbacks: ["azure-eu"],
      maxAttempts: 2,
      timeoutMs: 60_000,
    });
  });

  it("accepts the example of gateway/README.md", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const example = /```yaml\n(# PROVIDERS_FILE[\s\S]*?)```/.exec(readme)![1]!;
    const env = {
      ANTHROPIC_API_KEY: "a",
      ANTHROPIC_BACKUP_KEY: "b",
      AZURE_OPENAI_API_KEY: "c",
      GEMINI_API_KEY: "d",
      OPENROUTER_API_KEY: "e",
      OPENAI_API_KEY: "f",
    };
    const providers = parse(example, env);
    expect(providers.map((p) => p.kind)).toEqual([
      "anthropic",
      "anthropic",
      "azure-openai",
      "gemini",
      "openai",
      "openai",
    ]);
    const registry = new ProviderRegistry(providers);
    void registry.close();
  });

  it("refuses a fallback naming no configured provider, naming the field", () => {
    const dir = tempDir();
    try {
      const file = join(dir.path, "providers.yaml");
      writeFileSync(
        file,
        `providers: [{name: a, kind: openai, models: ["*"], model_fallbacks: {gpt-4o: [openai, nope]}}]`,
      );
      // The OPENAI_* shorthand is a provider a fallback may name; "nope" is none.
      expect(() => loadConfig({ ...base, PROVIDERS_FILE: file, OPENAI_API_KEY: "sk-o" })).toThrow(ConfigError);
      expect(() => loadConfig({ ...base, PROVIDERS_FILE: file, OPENAI_API_KEY: "sk-o" })).toThrow(
        'provider a: model_fallbacks.gpt-4o names "nope", which is no configured provider',
      );
      writeFileSync(file, `providers: [{name: a, kind: openai, models: ["*"], fallbacks: [openai]}]`);
      expect(loadConfig({ ...base, PROVIDERS_FILE: file, OPENAI_API_KEY: "sk-o" }).providers[0]).toMatchObject({
        fallbacks: ["openai"],
      });
    } finally {
      dir.remove();
    }
  });

  it("adds a Gemini shorthand (gemini-*) before the OpenAI one", () => {
    expect(
      loadProviders({ GEMINI_API_KEY: "g", OPENAI_API_KEY: "o" }, 1_000).map((p) => [
        p.name,
        p.kind,
        p.baseUrl,
        p.modelPatterns,
      ]),
    ).toEqual([
      ["gemini", "gemini", "https://generativelanguage.googleapis.com/v1beta/openai", ["gemini-*"]],
      ["openai", "openai", "https://api.openai.com/v1", ["*"]],
    ]);
  });

  it("routes by prefix, stripping it unless told not to, after exact names and in provider order", async () => {
    const registry = new ProviderRegistry(
      parse(`providers:
  - {name: claude, kind: anthropic, base_url: "http://127.0.0.1:1", models: ["anthropic/pinned"], model_prefixes: ["anthropic/"]}
  - {name: router, kind: openai, base_url: "http://127.0.0.1:1/v1", model_prefixes: ["or/"], strip_model_prefix: false, model_patterns: ["*"]}
`),
    );
    try {
      const resolve = (m: string) => {
        const r = registry.resolve(m);
        return r && [r.provider.name, r.upstreamModel];
      };
      expect(resolve("anthropic/claude-x")).toEqual(["claude", "claude-x"]);
      expect(resolve("anthropic/pinned")).toEqual(["claude", "anthropic/pinned"]);
      expect(resolve("or/anthropic/claude-x")).toEqual(["router", "or/anthropic/claude-x"]);
      // The bare prefix names no model.
      expect(resolve("anthropic/")).toEqual(["router", "anthropic/"]);
      expect(registry.route("anthropic/claude-x")).toBe(registry.providers[0]);
    } finally {
      await registry.close();
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
