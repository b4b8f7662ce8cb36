/** Token counts as the provider reported them. */
export interface Usage {
  /**
   * As the provider counts it: OpenAI's prompt_tokens include cached tokens,
   * Anthropic's input_tokens exclude cache reads and writes.
   */
  promptTokens: number | null;
  completionTokens: number | null;
  totalTokens: number | null;
  /** Prompt tokens served from the provider's prompt cache (OpenAI cached_tokens, Anthropic cache_read_input_tokens). */
  cacheReadTokens: number | null;
  /** Prompt tokens written to the cache (Anthropic cache_creation_input_tokens); OpenAI reports none. */
  cacheWriteTokens: number | null;
}

/** Whose wire format an answer is in: where its `usage` lives and what it is called. */
export type UsageFormat = "openai" | "anthropic";

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function sum(a: number | null, b: number | null): number | null {
  return a === null && b === null ? null : (a ?? 0) + (b ?? 0);
}

/**
 * Reads an OpenAI `usage` object: chat, completions and embeddings call the
 * counts prompt/completion_tokens, the Responses API input/output_tokens.
 * Null when absent or not an object.
 */
export function parseUsage(value: unknown): Usage | null {
  if (!value || typeof value !== "object") return null;
  const u = value as Record<string, unknown>;
  const promptTokens = num(u.prompt_tokens) ?? num(u.input_tokens);
  const completionTokens = num(u.completion_tokens) ?? num(u.output_tokens);
  const details = (u.prompt_tokens_details ?? u.input_tokens_details) as { cached_tokens?: unknown } | null | undefined;
  return {
    promptTokens,
    completionTokens,
    totalTokens: num(u.total_tokens) ?? sum(promptTokens, completionTokens),
    cacheReadTokens: details && typeof details === "object" ? num(details.cached_tokens) : null,
    cacheWriteTokens: null,
  };
}

/**
 * Reads an Anthropic `usage` object (input_tokens, output_tokens). Cache
 * reads and writes (cache_*_input_tokens) are reported apart, not added to
 * the prompt count: input_tokens is what Anthropic bills at the base rate.
 */
export function parseAnthropicUsage(value: unknown): Usage | null {
  if (!value || typeof value !== "object") return null;
  const u = value as Record<string, unknown>;
  const promptTokens = num(u.input_tokens);
  const completionTokens = num(u.output_tokens);
  return {
    promptTokens,
    completionTokens,
    totalTokens: sum(promptTokens, completionTokens),
    cacheReadTokens: num(u.cache_read_input_tokens),
    cacheWriteTokens: num(u.cache_creation_input_tokens),
  };
}

/** The usage of a whole (non-streamed) JSON answer. */
export function usageOfBody(format: UsageFormat, json: unknown): Usage | null {
  const usage = (json as { usage?: unknown } | null)?.usage;
  return format === "anthropic" ? parseAnthropicUsage(usage) : parseUsage(usage);
}

const MAX_PENDING_LINE = 1024 * 1024;

/** Whether `text` has `: null` (any blanks) at `from`: a member whose value is null. */
function isNullMember(text: string, from: number): boolean {
  let i = from;
  while (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9) i++;
  if (text.charCodeAt(i) !== 58) return false; // ':'
  i++;
  while (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9) i++;
  return text.startsWith("null", i);
}

/**
 * Watches an SSE stream passing through and collects its usage: for OpenAI
 * the last `usage` object (chat chunks, or `response.usage` of the Responses
 * API's response.completed); for Anthropic the input tokens of message_start
 * and the output tokens of the last message_delta. Lines may be split across
 * chunks; only lines that mention "usage" are parsed, to keep the tap cheap.
 */
export class SseUsageTap {
  private readonly decoder = new TextDecoder();
  private partial = "";
  usage: Usage | null = null;

  constructor(private readonly format: UsageFormat = "openai") {}

  push(chunk: Uint8Array): void {
    const text = this.partial + this.decoder.decode(chunk, { stream: true });
    const lastNl = text.lastIndexOf("\n");
    if (lastNl === -1) {
      // An absurdly long line is no usage chunk; drop it rather than grow.
      this.partial = text.length > MAX_PENDING_LINE ? "" : text;
      return;
    }
    this.partial = text.slice(lastNl + 1);
    if (!text.includes('"usage"')) return;
    for (const line of text.slice(0, lastNl).split("\n")) this.line(line);
  }

  end(): void {
    if (this.partial) this.line(this.partial);
    this.partial = "";
  }

  private line(raw: string): void {
    if (!raw.startsWith("data:")) return;
    const at = raw.indexOf('"usage"');
    if (at === -1) return;
    // OpenAI sends `"usage":null` in every chunk of a stream that asked for usage: nothing to parse there.
    if (raw.indexOf('"usage"', at + 7) === -1 && isNullMember(raw, at + 7)) return;
    const data = raw.slice(5).trim();
    if (data === "[DONE]") return;
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(data) as Record<string, unknown>;
    } catch {
      return; // Not JSON: the stream is the provider's business, the tap only observes.
    }
    if (event === null || typeof event !== "object") return;
    if (this.format === "openai") {
      const parsed = parseUsage(event.usage ?? (event.response as { usage?: unknown } | undefined)?.usage);
      if (parsed) this.usage = parsed;
      return;
    }
    // Anthropic: message_start carries the input tokens, message_delta the (cumulative) output tokens.
    const usage =
      event.type === "message_start" ? (event.message as { usage?: unknown } | undefined)?.usage : event.type === "message_delta" ? event.usage : undefined;
    const parsed = parseAnthropicUsage(usage);
    if (!parsed) return;
    // message_delta may repeat (cumulative) counts or leave them out: a missing one keeps message_start's.
    const promptTokens = parsed.promptTokens ?? this.usage?.promptTokens ?? null;
    const completionTokens = parsed.completionTokens ?? this.usage?.completionTokens ?? null;
    this.usage = {
      promptTokens,
      completionTokens,
      totalTokens: sum(promptTokens, completionTokens),
      cacheReadTokens: parsed.cacheReadTokens ?? this.usage?.cacheReadTokens ?? null,
      cacheWriteTokens: parsed.cacheWriteTokens ?? this.usage?.cacheWriteTokens ?? null,
    };
  }
}
