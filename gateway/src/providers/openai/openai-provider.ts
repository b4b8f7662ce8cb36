import { createHttpUpstream, headerString } from "../http-upstream.js";
import type { Endpoint, Provider, ProviderRequest } from "../types.js";

export { classifyUpstreamFailure } from "../http-upstream.js";

export interface OpenAiProviderOptions {
  /** The configured name (allowed_providers, metrics); default "openai". */
  name?: string;
  /** Base URL including /v1, as the openai SDK takes it. */
  baseUrl: string;
  apiKey: string | undefined;
  /** Whole-request deadline. */
  timeoutMs: number;
}

const PATHS: Record<Exclude<Endpoint, "messages" | "count_tokens">, string> = {
  chat_completions: "/chat/completions",
  completions: "/completions",
  embeddings: "/embeddings",
  responses: "/responses",
};

/** Client headers of OpenAI's API that travel upstream. */
const FORWARDED = ["openai-beta"] as const;

/**
 * OpenAI (or any OpenAI-compatible server). Keeps one keep-alive pool to the
 * upstream origin; sends the gateway's upstream key, never the client's.
 */
export function createOpenAiProvider(options: OpenAiProviderOptions): Provider {
  const upstream = createHttpUpstream(options.baseUrl, options.timeoutMs);
  const auth: Record<string, string> = options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` };

  return {
    name: options.name ?? "openai",
    kind: "openai",
    endpoints: new Set<Endpoint>(Object.keys(PATHS) as Endpoint[]),
    call(req: ProviderRequest) {
      if (req.endpoint === "messages" || req.endpoint === "count_tokens") throw new Error(`an OpenAI provider does not serve ${req.endpoint}`);
      const headers: Record<string, string> = {
        ...auth,
        "x-request-id": req.requestId,
        "content-type": "application/json",
        accept: req.stream ? "text/event-stream" : "application/json",
      };
      for (const name of FORWARDED) {
        const v = headerString(req.headers[name]);
        if (v !== undefined) headers[name] = v;
      }
      return upstream.request({ method: "POST", path: PATHS[req.endpoint], headers, body: req.body, signal: req.signal });
    },
    listModels: (signal, requestId) =>
      upstream.request({ method: "GET", path: "/models", headers: { ...auth, "x-request-id": requestId }, signal }),
    close: () => upstream.close(),
  };
}
