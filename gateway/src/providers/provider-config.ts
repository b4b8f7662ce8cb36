import { readFileSync } from "node:fs";
import { ConfigError, envOptional, envUrl, parseDurationMs } from "@tollgate/shared";
import { parse as parseYaml } from "yaml";
import { PROVIDER_KINDS, type ProviderKind } from "./types.js";

/** One upstream, as configured. The credential is resolved here and never logged. */
export interface ProviderConfig {
  /** allowed_providers and metrics see this name. */
  name: string;
  kind: ProviderKind;
  /** OpenAI kinds: including /v1; Anthropic: without it. Empty for the mock. */
  baseUrl: string;
  apiKey: string | undefined;
  /** Exact model names; matched before any pattern of any provider. */
  models: string[];
  /** Globs (`*` any run, `?` one character); a prefix `anthropic/` is kept as `anthropic/*`. */
  modelPatterns: string[];
  timeoutMs: number;
}

type Env = Record<string, string | undefined>;

export const DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1";
export const DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com";
const DEFAULT_BASE_URLS: Partial<Record<ProviderKind, string>> = {
  openai: DEFAULT_OPENAI_BASE_URL,
  anthropic: DEFAULT_ANTHROPIC_BASE_URL,
};
/** Kinds that may be declared but have no adapter yet. */
const NOT_IMPLEMENTED = new Set<ProviderKind>(["azure-openai", "gemini"]);
/** Names become metric labels and policy values: keep them short and plain. */
const NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const FIELDS = new Set(["name", "kind", "base_url", "api_key_env", "models", "model_prefixes", "model_patterns", "timeout"]);

/** The mock, serving every model: what a gateway without upstream settings answers with. */
export function mockProviderConfig(timeoutMs: number): ProviderConfig {
  return { name: "mock", kind: "mock", baseUrl: "", apiKey: undefined, models: [], modelPatterns: ["*"], timeoutMs };
}

function stringList(where: string, field: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string" && v.trim() !== "")) {
    throw new ConfigError(`${where}: ${field} must be a list of non-empty strings`);
  }
  return value.map((v: string) => v.trim());
}

function checkUrl(where: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${where}: base_url ${JSON.stringify(raw)} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`${where}: base_url must be http:// or https://, got ${JSON.stringify(raw)}`);
  }
  return raw.replace(/\/+$/, "");
}

/** One entry of a providers file; `where` names the file and entry in messages. */
function parseEntry(env: Env, where: string, raw: unknown, defaultTimeoutMs: number): ProviderConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new ConfigError(`${where} must be an object`);
  const e = raw as Record<string, unknown>;
  for (const k of Object.keys(e)) {
    if (!FIELDS.has(k)) throw new ConfigError(`${where}: unknown field ${JSON.stringify(k)} (known: ${[...FIELDS].join(", ")})`);
  }
  if (typeof e.name !== "string" || !NAME.test(e.name)) {
    throw new ConfigError(`${where}: name must be 1-63 lower-case letters, digits, '.', '_' or '-', got ${JSON.stringify(e.name)}`);
  }
  const at = `${where} (${e.name})`;
  if (typeof e.kind !== "string" || !(PROVIDER_KINDS as readonly string[]).includes(e.kind)) {
    throw new ConfigError(`${at}: kind must be one of ${PROVIDER_KINDS.join(", ")}, got ${JSON.stringify(e.kind)}`);
  }
  const kind = e.kind as ProviderKind;
  if (NOT_IMPLEMENTED.has(kind)) {
    throw new ConfigError(`${at}: kind ${kind} is declared but not implemented in this release; use an OpenAI-compatible endpoint with kind openai, or remove the entry`);
  }
  if (e.base_url !== undefined && typeof e.base_url !== "string") throw new ConfigError(`${at}: base_url must be a string`);
  const baseUrl = checkUrl(at, (e.base_url as string | undefined) ?? DEFAULT_BASE_URLS[kind] ?? "");
  let apiKey: string | undefined;
  if (e.api_key_env !== undefined) {
    if (typeof e.api_key_env !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(e.api_key_env)) {
      throw new ConfigError(`${at}: api_key_env must be the name of an environment variable, got ${JSON.stringify(e.api_key_env)}`);
    }
    apiKey = envOptional(env, e.api_key_env);
    if (apiKey === undefined) throw new ConfigError(`${at}: api_key_env names ${e.api_key_env}, which is not set`);
  }
  const models: string[] = [];
  const modelPatterns: string[] = [];
  for (const m of stringList(at, "models", e.models)) (m.includes("*") || m.includes("?") ? modelPatterns : models).push(m);
  for (const p of stringList(at, "model_prefixes", e.model_prefixes)) {
    if (p.includes("*") || p.includes("?")) throw new ConfigError(`${at}: model_prefixes are literal prefixes; ${JSON.stringify(p)} holds a wildcard (use model_patterns)`);
    modelPatterns.push(`${p}*`);
  }
  modelPatterns.push(...stringList(at, "model_patterns", e.model_patterns));
  if (models.length === 0 && modelPatterns.length === 0) {
    throw new ConfigError(`${at}: serves no model; list some in models, model_prefixes or model_patterns (e.g. ["*"] for all)`);
  }
  let timeoutMs = defaultTimeoutMs;
  if (e.timeout !== undefined) {
    const ms = typeof e.timeout === "string" ? parseDurationMs(e.timeout) : undefined;
    if (ms === undefined || ms <= 0) throw new ConfigError(`${at}: timeout must be a positive duration such as 30s or 10m, got ${JSON.stringify(e.timeout)}`);
    timeoutMs = ms;
  }
  return { name: e.name, kind, baseUrl, apiKey, models, modelPatterns, timeoutMs };
}

/** Parses a providers file's text (YAML, of which JSON is a subset). */
export function parseProvidersFile(env: Env, path: string, text: string, defaultTimeoutMs: number): ProviderConfig[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`PROVIDERS_FILE=${JSON.stringify(path)} is not valid YAML or JSON: ${(err as Error).message.split("\n")[0]}`);
  }
  const list = (doc as { providers?: unknown } | null)?.providers;
  if (!Array.isArray(list)) throw new ConfigError(`PROVIDERS_FILE=${JSON.stringify(path)} must hold {"providers": [...]}`);
  const out = list.map((raw, i) => parseEntry(env, `PROVIDERS_FILE providers[${i}]`, raw, defaultTimeoutMs));
  const seen = new Set<string>();
  for (const p of out) {
    if (seen.has(p.name)) throw new ConfigError(`PROVIDERS_FILE: provider name ${JSON.stringify(p.name)} is declared twice`);
    seen.add(p.name);
  }
  return out;
}

/**
 * The providers to route to, in routing order: the PROVIDERS_FILE entries,
 * then the ANTHROPIC_* shorthand (claude-*), then the OPENAI_* shorthand
 * (every other model); a shorthand whose name the file already uses is
 * skipped. Nothing configured: the mock.
 */
export function loadProviders(env: Env, defaultTimeoutMs: number): ProviderConfig[] {
  const providers: ProviderConfig[] = [];
  const file = envOptional(env, "PROVIDERS_FILE");
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new ConfigError(`PROVIDERS_FILE=${JSON.stringify(file)} cannot be read: ${(err as Error).message}`);
    }
    providers.push(...parseProvidersFile(env, file, text, defaultTimeoutMs));
  }
  const named = (name: string) => providers.some((p) => p.name === name);

  const anthropicKey = envOptional(env, "ANTHROPIC_API_KEY");
  const anthropicUrl = envUrl(env, "ANTHROPIC_BASE_URL");
  if ((anthropicKey !== undefined || anthropicUrl !== undefined) && !named("anthropic")) {
    providers.push({
      name: "anthropic",
      kind: "anthropic",
      baseUrl: anthropicUrl ?? DEFAULT_ANTHROPIC_BASE_URL,
      apiKey: anthropicKey,
      models: [],
      modelPatterns: ["claude-*"],
      timeoutMs: defaultTimeoutMs,
    });
  }
  const openaiKey = envOptional(env, "OPENAI_API_KEY");
  const openaiUrl = envUrl(env, "OPENAI_BASE_URL");
  if ((openaiKey !== undefined || openaiUrl !== undefined) && !named("openai")) {
    providers.push({
      name: "openai",
      kind: "openai",
      baseUrl: openaiUrl ?? DEFAULT_OPENAI_BASE_URL,
      apiKey: openaiKey,
      models: [],
      modelPatterns: ["*"],
      timeoutMs: defaultTimeoutMs,
    });
  }
  return providers.length > 0 ? providers : [mockProviderConfig(defaultTimeoutMs)];
}
