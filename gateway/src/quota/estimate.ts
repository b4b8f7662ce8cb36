/**
 * Prompt-token estimates for reservations, made before the upstream call. The
 * provider's usage settles the real count afterwards, so the estimate only
 * has to be close and cheap: o200k_base's exact count (our compact counter,
 * loaded on first use, in the background) over at most the first 4,096
 * characters of the prompt text, scaled to the rest; about 4 characters per
 * token until it has loaded.
 */
import { createO200kCounter } from "./o200k-counter.js";
import { loadO200kTables } from "./o200k-tables.js";

type CountTokens = (text: string) => number;

let counter: CountTokens | null = null;
let loading: Promise<void> | null = null;

const SAMPLE_CHARS = 4096;
/** OpenAI's chat format: about 3 tokens per message plus its role, and 3 to prime the reply. */
const PER_MESSAGE_OVERHEAD = 4;
const REPLY_PRIMING = 3;

/** Starts loading the tokenizer (bench/README.md, `pnpm bench:tokenizer`); estimates use the heuristic meanwhile. */
export function warmTokenizer(): Promise<void> {
  loading ??= loadO200kTables().then(
    (tables) => {
      counter = createO200kCounter(tables);
    },
    () => {
      // Stay on the heuristic: an estimate is all this is for.
    },
  );
  return loading;
}

export function countTextTokens(text: string): number {
  if (text.length === 0) return 0;
  if (!counter) {
    void warmTokenizer();
    return Math.ceil(text.length / 4);
  }
  if (text.length <= SAMPLE_CHARS) return counter(text);
  const sample = counter(text.slice(0, SAMPLE_CHARS));
  return Math.ceil((sample * text.length) / SAMPLE_CHARS);
}

/** As countTextTokens(parts.join("\n")), without building the joined text (a large prompt's copy). */
function countJoined(parts: readonly string[]): number {
  let length = parts.length > 0 ? parts.length - 1 : 0;
  for (const p of parts) length += p.length;
  if (length <= SAMPLE_CHARS) return countTextTokens(parts.join("\n"));
  if (!counter) {
    void warmTokenizer();
    return Math.ceil(length / 4);
  }
  let head = "";
  for (let i = 0; i < parts.length && head.length < SAMPLE_CHARS; i++) head += i > 0 ? `\n${parts[i]}` : parts[i];
  return Math.ceil((counter(head.slice(0, SAMPLE_CHARS)) * length) / SAMPLE_CHARS);
}

/** The text of a content value: a string, or parts with `text` (images and files count as nothing here). */
function textOf(content: unknown, out: string[]): void {
  if (typeof content === "string") out.push(content);
  else if (Array.isArray(content)) {
    for (const part of content) {
      if (typeof part === "string") out.push(part);
      else if (part && typeof part === "object") {
        const p = part as Record<string, unknown>;
        if (typeof p.text === "string") out.push(p.text);
        else if (typeof p.content === "string" || Array.isArray(p.content)) textOf(p.content, out);
        if (typeof p.input === "object" && p.input !== null) out.push(JSON.stringify(p.input));
        if (typeof p.arguments === "string") out.push(p.arguments);
      }
    }
  }
}

/**
 * Estimated prompt tokens of a request body in any of the served APIs: chat
 * messages, Anthropic messages and system, completions' prompt, embeddings'
 * input, the Responses API's input and instructions, and tool definitions.
 */
export function estimatePromptTokens(json: Record<string, unknown>): number {
  const parts: string[] = [];
  let messages = 0;
  for (const field of ["messages", "input"] as const) {
    const v = json[field];
    if (Array.isArray(v)) {
      for (const m of v) {
        if (m && typeof m === "object" && !Array.isArray(m)) {
          messages++;
          const msg = m as Record<string, unknown>;
          textOf(msg.content, parts);
          if (Array.isArray(msg.tool_calls)) parts.push(JSON.stringify(msg.tool_calls));
        } else textOf([m], parts);
      }
    } else textOf(v, parts);
  }
  textOf(json.prompt, parts);
  textOf(json.system, parts);
  textOf(json.instructions, parts);
  if (Array.isArray(json.tools)) parts.push(JSON.stringify(json.tools));
  return countJoined(parts) + messages * PER_MESSAGE_OVERHEAD + (messages > 0 ? REPLY_PRIMING : 0);
}

/**
 * Bodies from this size on are reserved at their size bound while far from every limit
 * (enforce.ts): below it, counting the prompt costs less than it saves (bench/README.md,
 * "Payload sizes").
 */
export const SIZE_BOUND_MIN_BYTES = 16 * 1024;

/**
 * An upper bound of a request's prompt tokens from its body's size alone, for
 * reservations far from a limit. Every token of a byte-level BPE (o200k_base,
 * cl100k_base, Claude's) stands for at least one byte of UTF-8 text; the text is
 * never longer than the JSON that carries it (escapes only lengthen it); and the
 * per-message overhead (PER_MESSAGE_OVERHEAD, REPLY_PRIMING) is less than the
 * bytes of the object and brackets each message takes. So tokens ≤ bytes. (Image
 * and file parts are not counted by any estimate here; the provider's usage settles them.)
 */
export function promptTokensBound(bodyBytes: number): number {
  return bodyBytes;
}

/** The most output tokens the request allows, or null when it sets no cap. */
export function maxOutputTokens(json: Record<string, unknown>): number | null {
  for (const f of ["max_completion_tokens", "max_tokens", "max_output_tokens"]) {
    const v = json[f];
    if (typeof v === "number" && Number.isFinite(v) && v >= 0) return Math.floor(v);
  }
  return null;
}
