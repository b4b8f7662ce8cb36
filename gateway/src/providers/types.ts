/** A chat completion request as the gateway received it. */
export interface ChatRequest {
  /** The client's bytes, forwarded unchanged. */
  body: Buffer;
  /** The same body, parsed once by the route. */
  json: Record<string, unknown>;
  stream: boolean;
  requestId: string;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/** An upstream answer, passed through by the route. */
export interface ProviderResponse {
  status: number;
  contentType: string | undefined;
  /** Chunks as they arrive; for SSE each chunk is written to the client at once. */
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
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

/** A provider adapter: talks to one upstream in the OpenAI wire format. */
export interface Provider {
  readonly name: string;
  chatCompletions(req: ChatRequest): Promise<ProviderResponse>;
  listModels(signal: AbortSignal, requestId: string): Promise<ProviderResponse>;
  close(): Promise<void>;
}
