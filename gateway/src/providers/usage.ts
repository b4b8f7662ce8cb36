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

const USAGE_KEY = Buffer.from("usage");

/** The index of the quote that closes the string whose content starts at `from`, or -1. Native search for quotes; escapes are judged by the backslashes before one. */
function stringEnd(body: Uint8Array, from: number): number {
  let i = from;
  for (;;) {
    i = body.indexOf(0x22, i);
    if (i < 0) return -1;
    let backslashes = 0;
    for (let j = i - 1; j >= from && body[j] === 0x5c; j--) backslashes++;
    if (backslashes % 2 === 0) return i;
    i++;
  }
}

/**
 * The bytes of the top-level member `key` of a JSON object (the last one,
 * as JSON.parse keeps), found by one scan that tracks strings and depth:
 * [start, end) of its value, or null when the body has none or is not an
 * object. Nothing is allocated; a body's content is never materialized.
 */
export function topLevelMember(body: Uint8Array, key: Uint8Array): [number, number] | null {
  let i = 0;
  const n = body.length;
  const blank = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
  while (i < n && blank(body[i]!)) i++;
  if (body[i] !== 0x7b) return null; // '{'
  i++;
  let found: [number, number] | null = null;
  for (;;) {
    while (i < n && (blank(body[i]!) || body[i] === 0x2c)) i++; // blanks and ','
    if (i >= n || body[i] === 0x7d) return found; // '}'
    if (body[i] !== 0x22) return null; // a key must be a string
    const keyStart = ++i;
    i = stringEnd(body, i);
    if (i < 0) return null;
    const keyEnd = i++;
    while (i < n && blank(body[i]!)) i++;
    if (body[i] !== 0x3a) return null; // ':'
    i++;
    while (i < n && blank(body[i]!)) i++;
    const valueStart = i;
    // Skip the value: a string, or anything up to the ',' or '}' that ends it at this level.
    let depth = 0;
    for (; i < n; i++) {
      const b = body[i]!;
      if (b === 0x22) {
        i = stringEnd(body, i + 1);
        if (i < 0) return null;
        if (depth === 0) {
          i++;
          break;
        }
      } else if (b === 0x7b || b === 0x5b) depth++;
      else if (b === 0x7d || b === 0x5d) {
        if (depth === 0) break; // the object's own '}'
        if (--depth === 0) {
          i++;
          break;
        }
      } else if (b === 0x2c && depth === 0) break;
    }
    if (i > n) return null;
    let valueEnd = i;
    while (valueEnd > valueStart && blank(body[valueEnd - 1]!)) valueEnd--;
    if (keyEnd - keyStart === key.length) {
      let same = true;
      for (let k = 0; k < key.length; k++) if (body[keyStart + k] !== key[k]) same = false;
      if (same) found = [valueStart, valueEnd];
    }
  }
}

/**
 * The usage of a whole (non-streamed) JSON answer, read from its bytes:
 * only the `usage` member is parsed, not the answer's content. Null when
 * there is none or it does not parse.
 */
export function usageOfBuffer(format: UsageFormat, body: Buffer): Usage | null {
  const span = topLevelMember(body, USAGE_KEY);
  if (span === null) return null;
  let usage: unknown;
  try {
    usage = JSON.parse(body.toString("utf8", span[0], span[1]));
  } catch {
    return null;
  }
  return format === "anthropic" ? parseAnthropicUsage(usage) : parseUsage(usage);
}

const MODEL_KEY = new TextEncoder().encode("model");

/** The top-level `model` of a whole JSON answer, when it is a string: the model a stored prompt picked. */
export function modelOfBuffer(body: Buffer): string | null {
  const span = topLevelMember(body, MODEL_KEY);
  if (span === null || body[span[0]] !== 0x22) return null;
  try {
    const model: unknown = JSON.parse(body.toString("utf8", span[0], span[1]));
    return typeof model === "string" ? model : null;
  } catch {
    return null;
  }
}

const MAX_PENDING_LINE = 1024 * 1024;

/** The upstream finished its answer: a finish or stop reason, or the Responses API's / Anthropic's closing event. */
const ANSWERED_RE = /"(?:finish_reason|stop_reason)"\s*:\s*"|"type"\s*:\s*"(?:response\.completed|message_stop)"/;

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
  /**
   * The upstream has produced the whole answer (a finish reason went by): from then on the
   * client has what it pays for, so its usage is owed whether or not the client stays.
   */
  answered = false;
  /** The model the usage event names (OpenAI formats): what a request without a model was answered by. */
  model: string | null = null;

  constructor(private readonly format: UsageFormat = "openai") {}

  push(chunk: Uint8Array): void {
    const text = this.partial + this.decoder.decode(chunk, { stream: true });
    if (!this.answered && (text.includes("_reason") || text.includes('"type"')) && ANSWERED_RE.test(text))
      this.answered = true;
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
      const response = event.response as { usage?: unknown; model?: unknown } | undefined;
      const parsed = parseUsage(event.usage ?? response?.usage);
      if (parsed) this.usage = parsed;
      const model = event.model ?? response?.model;
      if (typeof model === "string") this.model = model;
      return;
    }
    // Anthropic: message_start carries the input tokens, message_delta the (cumulative) output tokens.
    const usage =
      event.type === "message_start"
        ? (event.message as { usage?: unknown } | undefined)?.usage
        : event.type === "message_delta"
          ? event.usage
          : undefined;
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
