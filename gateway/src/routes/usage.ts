/** Token counts as the provider reported them. */
export interface Usage {
  promptTokens: number | null;
  completionTokens: number | null;
  totalTokens: number | null;
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** Reads an OpenAI `usage` object; null when absent or not an object. */
export function parseUsage(value: unknown): Usage | null {
  if (!value || typeof value !== "object") return null;
  const u = value as Record<string, unknown>;
  return {
    promptTokens: num(u.prompt_tokens),
    completionTokens: num(u.completion_tokens),
    totalTokens: num(u.total_tokens),
  };
}

const MAX_PENDING_LINE = 1024 * 1024;

/**
 * Watches an SSE stream passing through and keeps the last `usage` object of
 * its `data:` lines. Lines may be split across chunks; only lines that
 * mention "usage" are parsed, to keep the tap cheap.
 */
export class SseUsageTap {
  private readonly decoder = new TextDecoder();
  private partial = "";
  usage: Usage | null = null;

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
    if (!raw.startsWith("data:") || !raw.includes('"usage"')) return;
    const data = raw.slice(5).trim();
    if (data === "[DONE]") return;
    try {
      const parsed = parseUsage((JSON.parse(data) as { usage?: unknown }).usage);
      if (parsed) this.usage = parsed;
    } catch {
      // Not JSON: the stream is the provider's business, the tap only observes.
    }
  }
}
