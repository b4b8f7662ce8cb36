import { compileModelMatcher, modelAllowed, type ModelMatcher } from "../auth/model-matcher.js";
import { createAnthropicProvider } from "./anthropic/anthropic-provider.js";
import { createAzureOpenAiProvider } from "./azure-openai/azure-openai-provider.js";
import { withFallbacks } from "./fallback.js";
import { createGeminiProvider } from "./gemini/gemini-provider.js";
import { createMockProvider } from "./mock/mock-provider.js";
import { createOpenAiProvider } from "./openai/openai-provider.js";
import { DEFAULT_AZURE_API_VERSION, checkFallbacks, type ProviderConfig } from "./provider-config.js";
import type { Endpoint, Provider } from "./types.js";
import { UpstreamModelLists } from "./upstream-model-lists.js";

/** Builds the adapter a provider config names. */
export function createProvider(config: ProviderConfig): Provider {
  const { name, baseUrl, apiKey, timeoutMs } = config;
  switch (config.kind) {
    case "openai":
      return createOpenAiProvider({ name, baseUrl, apiKey, timeoutMs });
    case "anthropic":
      return createAnthropicProvider({ name, baseUrl, apiKey, timeoutMs });
    case "azure-openai":
      return createAzureOpenAiProvider({
        name,
        baseUrl,
        apiKey,
        timeoutMs,
        apiVersion: config.apiVersion ?? DEFAULT_AZURE_API_VERSION,
        deployments: config.deployments ?? {},
      });
    case "gemini":
      return createGeminiProvider({ name, baseUrl, apiKey, timeoutMs });
    case "mock":
      return createMockProvider();
  }
}

interface Routed {
  provider: Provider;
  config: ProviderConfig;
}

/** Where a model goes: the provider to call (with its fallbacks) and the model name it is sent. */
export interface Resolved {
  /** The routed provider wrapped with its fallback chain (a chain of one without fallbacks). */
  provider: Provider;
  /** The model without the routing prefix, when one matched and is stripped; else the client's. */
  upstreamModel: string;
}

type Rule =
  | { kind: "prefix"; prefix: string; strip: boolean; provider: Provider }
  | { kind: "pattern"; matcher: ModelMatcher; provider: Provider };

/**
 * The configured providers and the model routing table, compiled once at
 * start: an exact-name map (any provider's explicit list wins), then each
 * provider's prefixes and patterns in configuration order. Fallback chains
 * are built here too. A request only looks things up.
 */
export class ProviderRegistry {
  readonly providers: readonly Provider[];
  private readonly exact = new Map<string, Provider>();
  private readonly rules: Rule[] = [];
  private readonly configs = new Map<Provider, ProviderConfig>();
  private readonly chains = new Map<Provider, Provider>();
  private readonly modelChains = new Map<Provider, Map<string, Provider>>();
  /** The model lists upstreams publish in their own shape (Anthropic's), kept a few minutes. */
  readonly modelLists = new UpstreamModelLists();

  /** `overrides` replace the built adapter of the same name (tests). */
  constructor(configs: readonly ProviderConfig[], overrides: readonly Provider[] = []) {
    checkFallbacks(configs);
    const routed: Routed[] = configs.map((config) => ({
      config,
      provider: overrides.find((o) => o.name === config.name) ?? createProvider(config),
    }));
    this.providers = routed.map((r) => r.provider);
    const byName = new Map(routed.map((r) => [r.config.name, r.provider]));
    for (const { config, provider } of routed) {
      this.configs.set(provider, config);
      for (const m of config.models) if (!this.exact.has(m)) this.exact.set(m, provider);
    }
    for (const { config, provider } of routed) {
      for (const prefix of config.modelPrefixes ?? [])
        this.rules.push({ kind: "prefix", prefix, strip: config.stripModelPrefix !== false, provider });
      const matcher = compileModelMatcher(config.modelPatterns);
      if (matcher) this.rules.push({ kind: "pattern", matcher, provider });

      const chainOf = (names: readonly string[]) => {
        const chain = [provider, ...names.map((n) => byName.get(n)!)];
        return withFallbacks(chain, Math.min(config.maxAttempts ?? chain.length, chain.length));
      };
      this.chains.set(provider, chainOf(config.fallbacks ?? []));
      const perModel = new Map<string, Provider>();
      for (const [model, names] of Object.entries(config.modelFallbacks ?? {})) perModel.set(model, chainOf(names));
      if (perModel.size > 0) this.modelChains.set(provider, perModel);
    }
  }

  /** The provider serving `model` and what to call it upstream, or undefined when none serves it. */
  resolve(model: string): Resolved | undefined {
    let provider = this.exact.get(model);
    let upstreamModel = model;
    if (!provider) {
      for (const r of this.rules) {
        if (
          r.kind === "prefix"
            ? model.startsWith(r.prefix) && model.length > r.prefix.length
            : modelAllowed(r.matcher, model)
        ) {
          provider = r.provider;
          if (r.kind === "prefix" && r.strip) upstreamModel = model.slice(r.prefix.length);
          break;
        }
      }
    }
    if (!provider) return undefined;
    return { provider: this.modelChains.get(provider)?.get(model) ?? this.chains.get(provider)!, upstreamModel };
  }

  /** The first provider (with its fallbacks) that serves `endpoint` and that `mayUse` accepts: where a request without a model goes. */
  defaultFor(endpoint: Endpoint, mayUse: (name: string) => boolean): Provider | undefined {
    const provider = this.providers.find((p) => p.endpoints.has(endpoint) && mayUse(p.name));
    return provider && this.chains.get(provider);
  }

  /**
   * Where `model` goes on `endpoint`: its usual route when that provider
   * serves the endpoint; else the first provider serving the endpoint that
   * names the model (explicit list, prefix, pattern), then one whose
   * upstream model list has it (Anthropic-format providers serving models
   * not named `claude-*`). Otherwise the usual route, or undefined.
   */
  resolveFor(
    endpoint: Endpoint,
    model: string,
    requestId: string,
  ): Resolved | undefined | Promise<Resolved | undefined> {
    const usual = this.resolve(model);
    if (usual && usual.provider.endpoints.has(endpoint)) return usual;
    const serving = this.providers.filter((p) => p.endpoints.has(endpoint));
    if (serving.length === 0) return usual;
    const named = this.resolveAmong(model, new Set(serving));
    if (named) return named;
    const listed = serving.filter((p) => p.listNativeModels !== undefined);
    if (listed.length === 0) return usual;
    return (async () => {
      for (const p of listed) {
        const models = await this.modelLists.of(p, requestId).catch(() => [] as const);
        if (models.some((m) => m.id === model)) return { provider: this.chains.get(p)!, upstreamModel: model };
      }
      return usual;
    })();
  }

  /** resolve() limited to some providers. */
  private resolveAmong(model: string, among: ReadonlySet<Provider>): Resolved | undefined {
    for (const p of among) {
      if (this.modelsOf(p).includes(model))
        return { provider: this.modelChains.get(p)?.get(model) ?? this.chains.get(p)!, upstreamModel: model };
    }
    for (const r of this.rules) {
      if (!among.has(r.provider)) continue;
      if (
        r.kind === "prefix"
          ? model.startsWith(r.prefix) && model.length > r.prefix.length
          : modelAllowed(r.matcher, model)
      ) {
        const upstreamModel = r.kind === "prefix" && r.strip ? model.slice(r.prefix.length) : model;
        return {
          provider: this.modelChains.get(r.provider)?.get(model) ?? this.chains.get(r.provider)!,
          upstreamModel,
        };
      }
    }
    return undefined;
  }

  /** The configured provider serving `model` (not its fallback wrapper), or undefined when none does. */
  route(model: string): Provider | undefined {
    const resolved = this.resolve(model);
    return resolved && this.providers.find((p) => p.name === resolved.provider.name);
  }

  /** The explicit model names configured for `provider`. */
  modelsOf(provider: Provider): readonly string[] {
    return this.configs.get(provider)?.models ?? [];
  }

  /** True when `provider` also serves models beyond its explicit list (patterns or prefixes). */
  hasPatterns(provider: Provider): boolean {
    const c = this.configs.get(provider);
    return (c?.modelPatterns.length ?? 0) + (c?.modelPrefixes?.length ?? 0) > 0;
  }

  async close(): Promise<void> {
    await Promise.all(this.providers.map((p) => p.close()));
  }
}
