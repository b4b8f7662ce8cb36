import { clientIdentityList, createHttpUpstream, headerString, type HeaderList } from "../http-upstream.js";
import type { Endpoint, Provider, ProviderKind, ProviderRequest, ResponseResourceCall } from "../types.js";

export interface OpenAiProviderOptions {
  /** The configured name (allowed_providers, metrics); default "openai". */
  name?: string;
  /** Base URL including /v1, as the openai SDK takes it. */
  baseUrl: string;
  apiKey: string | undefined;
  /** Whole-request deadline. */
  timeoutMs: number;
}

export type OpenAiEndpoint = Exclude<Endpoint, "messages" | "count_tokens">;

export const OPENAI_PATHS: Record<OpenAiEndpoint, string> = {
  chat_completions: "/chat/completions",
  completions: "/completions",
  embeddings: "/embeddings",
  responses: "/responses",
  response_input_tokens: "/responses/input_tokens",
  response_compact: "/responses/compact",
};

/** The Responses API's endpoints: a provider serving one serves all three. */
export const RESPONSES_ENDPOINTS = [
  "responses",
  "response_input_tokens",
  "response_compact",
] as const satisfies readonly OpenAiEndpoint[];

/** Client headers of OpenAI's API that travel upstream. */
const FORWARDED = ["openai-beta"] as const;

/** How one OpenAI-compatible upstream differs from api.openai.com. */
export interface OpenAiCompatibleOptions {
  name: string;
  kind: ProviderKind;
  baseUrl: string;
  timeoutMs: number;
  /** The credential header(s); never logged. */
  auth: Record<string, string>;
  endpoints: readonly OpenAiEndpoint[];
  /** Path below the base URL, and the body when it must differ from the client's. */
  target(endpoint: OpenAiEndpoint, req: ProviderRequest): { path: string; body?: Buffer };
  /** Path of the model list, when the upstream has one in OpenAI's shape. */
  modelsPath?: string;
  /** Path of the Responses API's stored responses (e.g. "/responses"), when it serves them. */
  responsesPath?: string;
}

/**
 * Any upstream speaking OpenAI's wire format. Keeps one keep-alive pool to the
 * upstream origin; sends the gateway's upstream key, never the client's.
 */
export function createOpenAiCompatibleProvider(options: OpenAiCompatibleOptions): Provider {
  const upstream = createHttpUpstream(options.baseUrl, options.timeoutMs);
  const { auth, modelsPath, responsesPath } = options;
  // The credential as [name, value] pairs, built once (HeaderList).
  const authList: HeaderList = [];
  for (const name in auth) authList.push(name.toLowerCase(), auth[name]!);
  /** A client's call as it goes upstream: its id, the credential, the client's identity and the OpenAI headers it sent. */
  const clientCallHeaders = (from: ProviderRequest["headers"], requestId: string, stream: boolean, json: boolean) => {
    const headers: HeaderList = [
      "x-request-id",
      requestId,
      "accept",
      stream ? "text/event-stream" : "application/json",
    ];
    if (json) headers.push("content-type", "application/json");
    for (let i = 0; i < authList.length; i++) headers.push(authList[i]!);
    clientIdentityList(from, headers);
    for (const name of FORWARDED) {
      const v = headerString(from[name]);
      if (v !== undefined) headers.push(name, v);
    }
    return headers;
  };
  const endpoints = new Set<Endpoint>(options.endpoints);
  return {
    name: options.name,
    kind: options.kind,
    endpoints,
    call(req: ProviderRequest) {
      if (!endpoints.has(req.endpoint))
        throw new Error(`provider ${options.name} (${options.kind}) does not serve ${req.endpoint}`);
      const headers = clientCallHeaders(req.headers, req.requestId, req.stream, true);
      const { path, body } = options.target(req.endpoint as OpenAiEndpoint, req);
      return upstream.request({ method: "POST", path, headers, body: body ?? req.body, signal: req.signal });
    },
    ...(modelsPath !== undefined
      ? {
          listModels: (signal: AbortSignal, requestId: string) =>
            upstream.request({
              method: "GET",
              path: modelsPath,
              headers: { ...auth, "x-request-id": requestId },
              signal,
            }),
        }
      : {}),
    ...(responsesPath !== undefined
      ? {
          responseResource: (call: ResponseResourceCall) =>
            upstream.request({
              method: call.method,
              path: responsesPath + call.suffix,
              headers: clientCallHeaders(call.headers, call.requestId, call.stream, false),
              signal: call.signal,
            }),
        }
      : {}),
    close: () => upstream.close(),
  };
}

/**
 * An upstream that speaks OpenAI's API under one base URL with a Bearer key,
 * at OpenAI's own paths: OpenAI itself, or a compatible endpoint such as Gemini's.
 */
export function createBearerProvider(
  kind: ProviderKind,
  options: OpenAiProviderOptions,
  endpoints: readonly OpenAiEndpoint[],
  modelsPath?: string,
): Provider {
  return createOpenAiCompatibleProvider({
    name: options.name ?? kind,
    kind,
    baseUrl: options.baseUrl,
    timeoutMs: options.timeoutMs,
    auth: options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` },
    endpoints,
    target: (endpoint) => ({ path: OPENAI_PATHS[endpoint] }),
    ...(modelsPath !== undefined ? { modelsPath } : {}),
    ...(endpoints.includes("responses") ? { responsesPath: OPENAI_PATHS.responses } : {}),
  });
}

/** OpenAI itself, or any server that copies its API under one base URL. */
export function createOpenAiProvider(options: OpenAiProviderOptions): Provider {
  return createBearerProvider("openai", options, Object.keys(OPENAI_PATHS) as OpenAiEndpoint[], "/models");
}
