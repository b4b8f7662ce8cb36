import { createBearerProvider, type OpenAiProviderOptions } from "../openai/openai-provider.js";
import type { Provider } from "../types.js";

/**
 * Google Gemini through its OpenAI-compatible endpoint
 * (`{base}/chat/completions`, `{base}/embeddings`, Bearer key). Its model
 * list names models `models/gemini-…`, which no client sends, so it has none
 * here: list the models in the providers file to show them in /v1/models.
 */
export function createGeminiProvider(options: OpenAiProviderOptions): Provider {
  return createBearerProvider("gemini", options, ["chat_completions", "embeddings"]);
}
