// The chat request as the fake upstream reads it, and how it derives its answer
// and token counts from it (tests compute expected usage with the same functions).

/** A chat message as sent by clients (content may be a string or an array of parts). */
export interface ChatMessage {
  role: string;
  content?: unknown;
  [k: string]: unknown;
}

/** The request body of POST /v1/chat/completions, as far as the fake cares. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  [k: string]: unknown;
}

/**
 * Token counting the fake uses for `usage`, exported so tests can compute the
 * expected numbers: one token per whitespace-separated word of every message's
 * text, plus 3 per message (OpenAI's per-message overhead is about that).
 */
export function countPromptTokens(messages: ChatMessage[]): number {
  let n = 0;
  for (const m of messages) n += 3 + words(messageText(m)).length;
  return n;
}

/** The completion's tokens: one per streamed content piece (word plus its leading space). */
export function splitCompletion(content: string): string[] {
  // Keep whitespace attached so joining the pieces gives back the content exactly.
  return content.match(/\s*\S+/g) ?? (content === "" ? [] : [content]);
}

/** A message's text: its string content, or its text parts joined by spaces. */
export function messageText(m: ChatMessage): string {
  const c = m.content;
  if (typeof c === "string") return c;
  if (Array.isArray(c)) {
    return c
      .map((p: unknown) =>
        p && typeof p === "object" && (p as { type?: unknown }).type === "text"
          ? String((p as { text?: unknown }).text ?? "")
          : "",
      )
      .join(" ");
  }
  return "";
}

function words(s: string): string[] {
  return s.split(/\s+/).filter(Boolean);
}

/** The default answer: `echo: <last user message>`. */
export function defaultReply(request: ChatRequest): string {
  const lastUser = [...request.messages].reverse().find((m) => m.role === "user");
  return `echo: ${lastUser ? messageText(lastUser) : ""}`;
}
