import type { IncomingHttpHeaders } from "node:http";
import type { CallerSignal } from "./light-signal.js";

/** Provider kinds a providers file may declare; `mock` is the built-in stand-in. */
export const PROVIDER_KINDS = ["openai", "anthropic", "azure-openai", "gemini"] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number] | "mock";

/** Client endpoints that reach an upstream; each is one route of the client API. */
export type Endpoint =
  | "chat_completions"
  | "completions"
  | "embeddings"
  | "responses"
  | "response_input_tokens"
  | "response_compact"
  | "messages"
  | "count_tokens";

/** A call on a stored response of the Responses API (retrieve, delete, cancel, input items). */
export interface ResponseResourceCall {
  method: "GET" | "POST" | "DELETE";
  /** Below the provider's /responses path, query included: "/resp_123", "/resp_123/cancel". */
  suffix: string;
  requestId: string;
  signal: CallerSignal;
  /** The client's headers; the provider forwards only what its API defines, never a credential. */
  headers: IncomingHttpHeaders;
  /** The SSE stream is asked for (a resumed background response). */
  stream: boolean;
}

/** A client request as the gateway forwards it. */
export interface ProviderRequest {
  endpoint: Endpoint;
  /** The client's bytes, forwarded unchanged. */
  body: Buffer;
  /** The same body, parsed once by the route. */
  json: Record<string, unknown>;
  stream: boolean;
  requestId: string;
  /** Aborted when the client goes away (an AbortSignal will do). */
  signal: CallerSignal;
  /** The client's headers; each provider forwards only the few its API defines, never a credential. */
  headers: IncomingHttpHeaders;
  /** The client's query parameters; each provider forwards only those its API defines (Anthropic's beta=true). */
  query?: URLSearchParams;
  /** Told of each upstream call as it ends (its status or failure); a fallback chain makes several. */
  onAttempt?(attempt: Attempt): void;
  /** Whether the caller may use a provider (allowed_providers): fallbacks it may not use are skipped. */
  mayUse?(providerName: string): boolean;
}

/** One upstream call: an HTTP status, or a transport failure. */
export interface Attempt {
  provider: string;
  status?: number;
  reason?: UpstreamFailure;
  latencyMs: number;
  /** True when the gateway went on to another provider after this one. */
  fellBack: boolean;
}

/** An upstream answer, passed through by the route. */
export interface ProviderResponse {
  status: number;
  contentType: string | undefined;
  /** Upstream response headers worth passing on (retry-after, the provider's request id). */
  headers: Record<string, string>;
  /** Chunks as they arrive; for SSE each chunk is written to the client at once. */
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /** Drops an unread body (an answer a fallback replaces), freeing its connection. */
  discard?(): void;
  /**
   * The whole body, taken at once, when it has already arrived in full and
   * nothing of it was read (a small answer usually has by the time its head
   * is handled); null otherwise, and `body` is read as usual.
   */
  takeComplete?(): Buffer | null;
}

export type UpstreamFailure = "connect" | "timeout";

/** The upstream could not be reached or did not answer in time. */
export class UpstreamError extends Error {
  constructor(
    readonly reason: UpstreamFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "UpstreamError";
  }

  get status(): 502 | 504 {
    return this.reason === "timeout" ? 504 : 502;
  }
}

/** One model of an upstream's own list, in the fields both APIs' list entries need. */
export interface UpstreamModel {
  id: string;
  displayName?: string;
  createdAt?: string;
}

/** An upstream answered a gateway-made call (e.g. its model list) with an error status. */
export class UpstreamStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "UpstreamStatusError";
  }
}

/**
 * The provider cannot call the model the request names (e.g. not an Azure
 * deployment name): the caller's mistake, found before any upstream call, so
 * never a reason to fall back. `code` is the client-facing error code.
 */
export class ModelNotCallableError extends Error {
  readonly code = "model_not_found";

  constructor(message: string) {
    super(message);
    this.name = "ModelNotCallableError";
  }
}

/** A provider adapter: one upstream, speaking its own wire format. */
export interface Provider {
  /** The configured name: what allowed_providers and metrics labels see. */
  readonly name: string;
  readonly kind: ProviderKind;
  /** The client endpoints this provider answers natively. */
  readonly endpoints: ReadonlySet<Endpoint>;
  call(req: ProviderRequest): Promise<ProviderResponse>;
  /** The upstream's model list in OpenAI's shape, when it has one. */
  listModels?(signal: AbortSignal, requestId: string): Promise<ProviderResponse>;
  /**
   * The upstream's own model list in a non-OpenAI shape (Anthropic's), read
   * whole; rejects with UpstreamError, or UpstreamStatusError on an error status.
   */
  listNativeModels?(requestId: string): Promise<readonly UpstreamModel[]>;
  /** A stored response's sub-resources, when the provider serves the Responses API. */
  responseResource?(call: ResponseResourceCall): Promise<ProviderResponse>;
  close(): Promise<void>;
}
