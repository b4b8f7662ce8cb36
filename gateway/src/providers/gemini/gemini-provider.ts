import { OPENAI_PATHS, createOpenAiCompatibleProvider, type OpenAiProviderOptions } from "../openai/openai-provider.js";
import type { Provider } from "../types.js";

/**
 * Google Gemini through its OpenAI-compatible endpoint
 * (`{base}/chat/completions`, `{base}/embeddings`, Bearer key). Its model
 * list names models `models/gemini-…`, which no client sends, so it has none
 * here: list the models in the providers file to show them in /v1/models.
 */
export function createGeminiProvider(options: OpenAiProviderOptions): Provider {
  return createOpenAiCompatibleProvider({
    name: options.name ?? "gemini",
    kind: "gemini",
    baseUrl: options.baseUrl,
    timeoutMs: options.timeoutMs,
    auth: options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` },
    endpoints: ["chat_completions", "embeddings"],
    target: (endpoint) => ({ path: OPENAI_PATHS[endpoint] }),
  });
}
