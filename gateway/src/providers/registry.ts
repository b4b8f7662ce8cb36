import type { ProviderConfig } from "../config.js";
import { createMockProvider } from "./mock/mock-provider.js";
import { createOpenAiProvider } from "./openai/openai-provider.js";
import type { Provider } from "./types.js";

export interface ProviderOptions {
  upstreamTimeoutMs: number;
}

/** Builds the provider the config names. */
export function createProvider(config: ProviderConfig, options: ProviderOptions): Provider {
  switch (config.kind) {
    case "openai":
      return createOpenAiProvider({ baseUrl: config.baseUrl, apiKey: config.apiKey, timeoutMs: options.upstreamTimeoutMs });
    case "mock":
      return createMockProvider();
  }
}
