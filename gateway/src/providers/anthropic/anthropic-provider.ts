import { clientIdentityList, createHttpUpstream, headerString, type HeaderList } from "../http-upstream.js";
import { LightSignal } from "../light-signal.js";
import {
  UpstreamStatusError,
  type Endpoint,
  type Provider,
  type ProviderRequest,
  type UpstreamModel,
} from "../types.js";

export interface AnthropicProviderOptions {
  /** The configured name (allowed_providers, metrics); default "anthropic". */
  name?: string;
  /** Base URL without /v1, as the Anthropic SDK takes it: https://api.anthropic.com. */
  baseUrl: string;
  apiKey: string | undefined;
  timeoutMs: number;
}

const PATHS: Partial<Record<Endpoint, string>> = {
  messages: "/v1/messages",
  count_tokens: "/v1/messages/count_tokens",
};

/** Sent when the client names no version (the SDKs always do). */
export const DEFAULT_ANTHROPIC_VERSION = "2023-06-01";

/**
 * Anthropic's native Messages API: `POST {base}/v1/messages` with `x-api-key`
 * and `anthropic-version`. The client's `anthropic-version` and
 * `anthropic-beta` travel upstream; its credential never does.
 */
export function createAnthropicProvider(options: AnthropicProviderOptions): Provider {
  const upstream = createHttpUpstream(options.baseUrl, options.timeoutMs);
  return {
    name: options.name ?? "anthropic",
    kind: "anthropic",
    endpoints: new Set<Endpoint>(["messages", "count_tokens"]),
    call(req: ProviderRequest) {
      const path = PATHS[req.endpoint];
      if (path === undefined) throw new Error(`an Anthropic provider does not serve ${req.endpoint}`);
      const headers: HeaderList = [
        "content-type",
        "application/json",
        "accept",
        req.stream ? "text/event-stream" : "application/json",
        "anthropic-version",
        headerString(req.headers["anthropic-version"]) ?? DEFAULT_ANTHROPIC_VERSION,
        "x-request-id",
        req.requestId,
      ];
      if (options.apiKey !== undefined) headers.push("x-api-key", options.apiKey);
      const beta = headerString(req.headers["anthropic-beta"]);
      if (beta !== undefined) headers.push("anthropic-beta", beta);
      clientIdentityList(req.headers, headers);
      // The SDK's beta methods call ?beta=true; the rest of a client's query is not forwarded.
      const query = req.query?.get("beta") === "true" ? "?beta=true" : "";
      return upstream.request({ method: "POST", path: path + query, headers, body: req.body, signal: req.signal });
    },
    async listNativeModels(requestId: string): Promise<readonly UpstreamModel[]> {
      const headers: Record<string, string> = {
        accept: "application/json",
        "anthropic-version": DEFAULT_ANTHROPIC_VERSION,
        "x-request-id": requestId,
      };
      if (options.apiKey !== undefined) headers["x-api-key"] = options.apiKey;
      const up = await upstream.request({
        method: "GET",
        path: "/v1/models?limit=1000",
        headers,
        signal: new LightSignal(),
      });
      const chunks: Buffer[] = [];
      for await (const c of up.body) chunks.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
      if (up.status >= 300)
        throw new UpstreamStatusError(
          up.status,
          `The upstream model list of ${options.name ?? "anthropic"} answered ${up.status}.`,
        );
      const parsed = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { data?: unknown };
      if (!Array.isArray(parsed.data)) return [];
      return parsed.data.flatMap(
        (m: { id?: unknown; display_name?: unknown; created_at?: unknown } | null): UpstreamModel[] =>
          m && typeof m.id === "string"
            ? [
                {
                  id: m.id,
                  ...(typeof m.display_name === "string" ? { displayName: m.display_name } : {}),
                  ...(typeof m.created_at === "string" ? { createdAt: m.created_at } : {}),
                },
              ]
            : [],
      );
    },
    close: () => upstream.close(),
  };
}
