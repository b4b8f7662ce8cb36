import { compileModelMatcher, modelAllowed, type ModelMatcher } from "../auth/model-matcher.js";
import { createAnthropicProvider } from "./anthropic/anthropic-provider.js";
import { createMockProvider } from "./mock/mock-provider.js";
import { createOpenAiProvider } from "./openai/openai-provider.js";
import type { ProviderConfig } from "./provider-config.js";
import type { Provider } from "./types.js";

/** Builds the adapter a provider config names. */
export function createProvider(config: ProviderConfig): Provider {
  const { name, baseUrl, apiKey, timeoutMs } = config;
  switch (config.kind) {
    case "openai":
      return createOpenAiProvider({ name, baseUrl, apiKey, timeoutMs });
    case "anthropic":
      return createAnthropicProvider({ name, baseUrl, apiKey, timeoutMs });
    case "mock":
      return createMockProvider();
    case "azure-openai":
    case "gemini":
      // provider-config refuses these at start; a config built in code gets the same answer.
      throw new Error(`provider kind ${config.kind} (${name}) is not implemented`);
  }
}

interface Routed {
  provider: Provider;
  config: ProviderConfig;
}

/**
 * The configured providers and the model routing table, compiled once at
 * start: an exact-name map (any provider's explicit list wins), then each
 * provider's patterns in configuration order. A request only looks things up.
 */
export class ProviderRegistry {
  readonly providers: readonly Provider[];
  private readonly exact = new Map<string, Provider>();
  private readonly patterns: Array<{ matcher: ModelMatcher; provider: Provider }> = [];
  private readonly configs = new Map<Provider, ProviderConfig>();

  /** `overrides` replace the built adapter of the same name (tests). */
  constructor(configs: readonly ProviderConfig[], overrides: readonly Provider[] = []) {
    const routed: Routed[] = configs.map((config) => ({
      config,
      provider: overrides.find((o) => o.name === config.name) ?? createProvider(config),
    }));
    this.providers = routed.map((r) => r.provider);
    for (const { config, provider } of routed) {
      this.configs.set(provider, config);
      for (const m of config.models) if (!this.exact.has(m)) this.exact.set(m, provider);
    }
    for (const { config, provider } of routed) {
      const matcher = compileModelMatcher(config.modelPatterns);
      if (matcher) this.patterns.push({ matcher, provider });
    }
  }

  /** The provider serving `model`, or undefined when none does. */
  route(model: string): Provider | undefined {
    const hit = this.exact.get(model);
    if (hit) return hit;
    for (const p of this.patterns) if (modelAllowed(p.matcher, model)) return p.provider;
    return undefined;
  }

  /** The explicit model names configured for `provider`. */
  modelsOf(provider: Provider): readonly string[] {
    return this.configs.get(provider)?.models ?? [];
  }

  /** True when `provider` also serves models beyond its explicit list (patterns). */
  hasPatterns(provider: Provider): boolean {
    return (this.configs.get(provider)?.modelPatterns.length ?? 0) > 0;
  }

  async close(): Promise<void> {
    await Promise.all(this.providers.map((p) => p.close()));
  }
}
