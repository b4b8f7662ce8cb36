import { readFileSync } from "node:fs";
import { ConfigError, envOptional, envSecret, envUrl, parseDurationMs } from "@tollgate/shared";
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
  /** Globs (`*` any run, `?` one character). */
  modelPatterns: string[];
  /**
   * Literal prefixes such as `anthropic/`: a model starting with one routes
   * here (before this provider's patterns) and, unless stripModelPrefix is
   * false, goes upstream without it.
   */
  modelPrefixes?: string[];
  /** Default true: `anthropic/claude-x` reaches the upstream as `claude-x`. */
  stripModelPrefix?: boolean;
  timeoutMs: number;
  /** Providers tried in order when this one fails (5xx, 429, timeout, connection failure). */
  fallbacks?: string[];
  /** Per model (the client's name): a fallback list replacing `fallbacks`. */
  modelFallbacks?: Record<string, string[]>;
  /** Calls per request, the first included; default 1 + the fallback list's length. */
  maxAttempts?: number;
  /** azure-openai: the api-version query, or "v1" for the v1 API (no deployment in the path). */
  apiVersion?: string;
  /** azure-openai: model → deployment name; a model not listed is its own deployment. */
  deployments?: Record<string, string>;
}

type Env = Record<string, string | undefined>;

export const DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1";
export const DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com";
export const DEFAULT_GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/v1beta/openai";
/** A GA api-version every Azure OpenAI resource accepts (chat, completions, embeddings). */
export const DEFAULT_AZURE_API_VERSION = "2024-10-21";
const DEFAULT_BASE_URLS: Partial<Record<ProviderKind, string>> = {
  openai: DEFAULT_OPENAI_BASE_URL,
  anthropic: DEFAULT_ANTHROPIC_BASE_URL,
  gemini: DEFAULT_GEMINI_BASE_URL,
};
/** Names become metric labels and policy values: keep them short and plain. */
const NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
/** An Azure resource name, as the portal allows it (it becomes a host name). */
const AZURE_RESOURCE = /^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}$/;
/** Deployment names are path segments: Azure allows letters, digits, '-', '_' and '.'. */
const AZURE_DEPLOYMENT = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const API_VERSION = /^(v1|\d{4}-\d{2}-\d{2}(-preview)?)$/;
/** More attempts than this only multiply an outage's latency. */
export const MAX_ATTEMPTS_LIMIT = 5;
const FIELDS = new Set([
  "name",
  "kind",
  "base_url",
  "api_key_env",
  "models",
  "model_prefixes",
  "strip_model_prefix",
  "model_patterns",
  "timeout",
  "fallbacks",
  "model_fallbacks",
  "max_attempts",
  "resource",
  "api_version",
  "deployments",
]);
const AZURE_ONLY = ["resource", "api_version", "deployments"] as const;

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
    // The text may hold a credential (user:password@): never echo it.
    throw new ConfigError(`${where}: base_url is not a URL; use e.g. https://api.example.com/v1`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`${where}: base_url must be http:// or https://, got ${JSON.stringify(url.protocol)}`);
  }
  // Only the origin and path are used: a credential or query there would be silently dropped.
  if (url.username || url.password) {
    throw new ConfigError(`${where}: base_url must not carry a user or password; put the credential in api_key_env`);
  }
  if (url.search || url.hash) throw new ConfigError(`${where}: base_url must not have a query or fragment`);
  return raw.replace(/\/+$/, "");
}

/** One entry of a providers file; `where` names the file and entry in messages. */
function parseEntry(env: Env, where: string, raw: unknown, defaultTimeoutMs: number): ProviderConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw new ConfigError(`${where} must be an object`);
  const e = raw as Record<string, unknown>;
  for (const k of Object.keys(e)) {
    if (!FIELDS.has(k))
      throw new ConfigError(`${where}: unknown field ${JSON.stringify(k)} (known: ${[...FIELDS].join(", ")})`);
  }
  if (typeof e.name !== "string" || !NAME.test(e.name)) {
    throw new ConfigError(
      `${where}: name must be 1-63 lower-case letters, digits, '.', '_' or '-', got ${JSON.stringify(e.name)}`,
    );
  }
  const at = `${where} (${e.name})`;
  if (typeof e.kind !== "string" || !(PROVIDER_KINDS as readonly string[]).includes(e.kind)) {
    throw new ConfigError(`${at}: kind must be one of ${PROVIDER_KINDS.join(", ")}, got ${JSON.stringify(e.kind)}`);
  }
  const kind = e.kind as ProviderKind;
  if (kind !== "azure-openai") {
    for (const f of AZURE_ONLY)
      if (e[f] !== undefined) throw new ConfigError(`${at}: ${f} applies to kind azure-openai only`);
  }
  if (e.base_url !== undefined && typeof e.base_url !== "string")
    throw new ConfigError(`${at}: base_url must be a string`);
  const azure: Partial<ReturnType<typeof parseAzure>> = kind === "azure-openai" ? parseAzure(at, e) : {};
  const baseUrl = checkUrl(at, (e.base_url as string | undefined) ?? azure.baseUrl ?? DEFAULT_BASE_URLS[kind] ?? "");
  let apiKey: string | undefined;
  if (e.api_key_env !== undefined) {
    if (typeof e.api_key_env !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(e.api_key_env)) {
      throw new ConfigError(
        `${at}: api_key_env must be the name of an environment variable, got ${JSON.stringify(e.api_key_env)}`,
      );
    }
    apiKey = envSecret(env, e.api_key_env);
    if (apiKey === undefined)
      throw new ConfigError(`${at}: api_key_env names ${e.api_key_env}, which is not set (nor ${e.api_key_env}_FILE)`);
  }
  const models: string[] = [];
  const modelPatterns: string[] = [];
  for (const m of stringList(at, "models", e.models))
    (m.includes("*") || m.includes("?") ? modelPatterns : models).push(m);
  // A deployment map names the models it serves.
  for (const m of Object.keys(azure.deployments ?? {})) if (!models.includes(m)) models.push(m);
  const modelPrefixes = stringList(at, "model_prefixes", e.model_prefixes);
  for (const p of modelPrefixes) {
    if (p.includes("*") || p.includes("?"))
      throw new ConfigError(
        `${at}: model_prefixes are literal prefixes; ${JSON.stringify(p)} holds a wildcard (use model_patterns)`,
      );
  }
  if (e.strip_model_prefix !== undefined && typeof e.strip_model_prefix !== "boolean") {
    throw new ConfigError(
      `${at}: strip_model_prefix must be true or false, got ${JSON.stringify(e.strip_model_prefix)}`,
    );
  }
  modelPatterns.push(...stringList(at, "model_patterns", e.model_patterns));
  if (models.length === 0 && modelPatterns.length === 0 && modelPrefixes.length === 0) {
    throw new ConfigError(
      `${at}: serves no model; list some in models, model_prefixes or model_patterns (e.g. ["*"] for all)`,
    );
  }
  const fallbacks = stringList(at, "fallbacks", e.fallbacks);
  let modelFallbacks: Record<string, string[]> | undefined;
  if (e.model_fallbacks !== undefined) {
    if (e.model_fallbacks === null || typeof e.model_fallbacks !== "object" || Array.isArray(e.model_fallbacks)) {
      throw new ConfigError(
        `${at}: model_fallbacks must map model names to lists of provider names, e.g. {"gpt-4o": ["azure-eu"]}`,
      );
    }
    modelFallbacks = {};
    for (const [model, list] of Object.entries(e.model_fallbacks as Record<string, unknown>)) {
      modelFallbacks[model] = stringList(at, `model_fallbacks.${model}`, list);
    }
  }
  let maxAttempts: number | undefined;
  if (e.max_attempts !== undefined) {
    if (
      typeof e.max_attempts !== "number" ||
      !Number.isInteger(e.max_attempts) ||
      e.max_attempts < 1 ||
      e.max_attempts > MAX_ATTEMPTS_LIMIT
    ) {
      throw new ConfigError(
        `${at}: max_attempts must be an integer from 1 to ${MAX_ATTEMPTS_LIMIT}, got ${JSON.stringify(e.max_attempts)}`,
      );
    }
    maxAttempts = e.max_attempts;
    if (fallbacks.length === 0 && modelFallbacks === undefined)
      throw new ConfigError(`${at}: max_attempts needs fallbacks or model_fallbacks to try`);
  }
  let timeoutMs = defaultTimeoutMs;
  if (e.timeout !== undefined) {
    const ms = typeof e.timeout === "string" ? parseDurationMs(e.timeout) : undefined;
    if (ms === undefined || ms <= 0 || ms > 2 ** 31 - 1) {
      throw new ConfigError(
        `${at}: timeout must be a positive duration such as 30s or 10m, at most 24d, got ${JSON.stringify(e.timeout)}`,
      );
    }
    timeoutMs = ms;
  }
  return {
    name: e.name,
    kind,
    baseUrl,
    apiKey,
    models,
    modelPatterns,
    timeoutMs,
    ...(modelPrefixes.length > 0 ? { modelPrefixes } : {}),
    ...(e.strip_model_prefix === false ? { stripModelPrefix: false } : {}),
    ...(fallbacks.length > 0 ? { fallbacks } : {}),
    ...(modelFallbacks ? { modelFallbacks } : {}),
    ...(maxAttempts !== undefined ? { maxAttempts } : {}),
    ...(azure.apiVersion !== undefined ? { apiVersion: azure.apiVersion } : {}),
    ...(azure.deployments !== undefined ? { deployments: azure.deployments } : {}),
  };
}

/** The azure-openai fields: where the resource is, which api-version, which deployment serves which model. */
function parseAzure(
  at: string,
  e: Record<string, unknown>,
): { baseUrl?: string; apiVersion: string; deployments?: Record<string, string> } {
  let baseUrl: string | undefined;
  if (e.resource !== undefined) {
    if (e.base_url !== undefined) throw new ConfigError(`${at}: set resource or base_url, not both`);
    if (typeof e.resource !== "string" || !AZURE_RESOURCE.test(e.resource)) {
      throw new ConfigError(
        `${at}: resource must be the Azure OpenAI resource name (letters, digits, '-'), got ${JSON.stringify(e.resource)}`,
      );
    }
    baseUrl = `https://${e.resource}.openai.azure.com`;
  } else if (e.base_url === undefined) {
    throw new ConfigError(
      `${at}: kind azure-openai needs resource (the name in https://{resource}.openai.azure.com) or base_url`,
    );
  }
  let apiVersion = DEFAULT_AZURE_API_VERSION;
  if (e.api_version !== undefined) {
    if (typeof e.api_version !== "string" || !API_VERSION.test(e.api_version)) {
      throw new ConfigError(
        `${at}: api_version must be a date such as 2024-10-21 (or 2025-04-01-preview), or v1, got ${JSON.stringify(e.api_version)}`,
      );
    }
    // Streams get stream_options.include_usage forced on (usage counts against quotas);
    // Azure refuses the field before 2024-09-01.
    if (e.api_version !== "v1" && e.api_version.slice(0, 10) < "2024-09-01") {
      throw new ConfigError(
        `${at}: api_version must be 2024-09-01 or later (streamed usage needs stream_options), or v1, got ${JSON.stringify(e.api_version)}`,
      );
    }
    apiVersion = e.api_version;
  }
  let deployments: Record<string, string> | undefined;
  if (e.deployments !== undefined) {
    if (e.deployments === null || typeof e.deployments !== "object" || Array.isArray(e.deployments)) {
      throw new ConfigError(`${at}: deployments must map model names to deployment names, e.g. {"gpt-4o": "my-gpt4o"}`);
    }
    deployments = {};
    for (const [model, dep] of Object.entries(e.deployments as Record<string, unknown>)) {
      if (typeof dep !== "string" || !AZURE_DEPLOYMENT.test(dep)) {
        throw new ConfigError(
          `${at}: deployments.${model} must be a deployment name (letters, digits, '-', '_', '.'), got ${JSON.stringify(dep)}`,
        );
      }
      deployments[model] = dep;
    }
  }
  return { ...(baseUrl !== undefined ? { baseUrl } : {}), apiVersion, ...(deployments ? { deployments } : {}) };
}

/** Every fallback must name a configured provider (the env shorthands count). */
export function checkFallbacks(providers: readonly ProviderConfig[]): void {
  const names = new Set(providers.map((p) => p.name));
  for (const p of providers) {
    const lists: Array<[string, string[]]> = [
      ["fallbacks", p.fallbacks ?? []],
      ...Object.entries(p.modelFallbacks ?? {}).map(([m, l]): [string, string[]] => [`model_fallbacks.${m}`, l]),
    ];
    for (const [field, list] of lists) {
      for (const name of list) {
        if (!names.has(name)) {
          throw new ConfigError(
            `provider ${p.name}: ${field} names ${JSON.stringify(name)}, which is no configured provider (known: ${[...names].join(", ")})`,
          );
        }
      }
    }
  }
}

/** Parses a providers file's text (YAML, of which JSON is a subset). */
export function parseProvidersFile(env: Env, path: string, text: string, defaultTimeoutMs: number): ProviderConfig[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(
      `PROVIDERS_FILE=${JSON.stringify(path)} is not valid YAML or JSON: ${(err as Error).message.split("\n")[0]}`,
    );
  }
  const list = (doc as { providers?: unknown } | null)?.providers;
  if (!Array.isArray(list))
    throw new ConfigError(`PROVIDERS_FILE=${JSON.stringify(path)} must hold {"providers": [...]}`);
  const out = list.map((raw, i) => parseEntry(env, `PROVIDERS_FILE providers[${i}]`, raw, defaultTimeoutMs));
  const seen = new Set<string>();
  for (const p of out) {
    if (seen.has(p.name))
      throw new ConfigError(`PROVIDERS_FILE: provider name ${JSON.stringify(p.name)} is declared twice`);
    seen.add(p.name);
  }
  return out;
}

/** The one-provider shorthands, in routing order: each is named after its kind and routes the models its pattern matches. */
const SHORTHANDS: { kind: ProviderKind; apiKey: string; baseUrl: string; defaultBaseUrl: string; pattern: string }[] = [
  {
    kind: "anthropic",
    apiKey: "ANTHROPIC_API_KEY",
    baseUrl: "ANTHROPIC_BASE_URL",
    defaultBaseUrl: DEFAULT_ANTHROPIC_BASE_URL,
    pattern: "claude-*",
  },
  {
    kind: "gemini",
    apiKey: "GEMINI_API_KEY",
    baseUrl: "GEMINI_BASE_URL",
    defaultBaseUrl: DEFAULT_GEMINI_BASE_URL,
    pattern: "gemini-*",
  },
  {
    kind: "openai",
    apiKey: "OPENAI_API_KEY",
    baseUrl: "OPENAI_BASE_URL",
    defaultBaseUrl: DEFAULT_OPENAI_BASE_URL,
    pattern: "*",
  },
];

/**
 * The providers to route to, in routing order: the PROVIDERS_FILE entries,
 * then the ANTHROPIC_* shorthand (claude-*), the GEMINI_* shorthand
 * (gemini-*), then the OPENAI_* shorthand
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

  for (const sh of SHORTHANDS) {
    const apiKey = envOptional(env, sh.apiKey);
    const baseUrl = envUrl(env, sh.baseUrl);
    if ((apiKey === undefined && baseUrl === undefined) || named(sh.kind)) continue;
    providers.push({
      name: sh.kind,
      kind: sh.kind,
      baseUrl: baseUrl ?? sh.defaultBaseUrl,
      apiKey,
      models: [],
      modelPatterns: [sh.pattern],
      timeoutMs: defaultTimeoutMs,
    });
  }
  checkFallbacks(providers);
  return providers.length > 0 ? providers : [mockProviderConfig(defaultTimeoutMs)];
}
