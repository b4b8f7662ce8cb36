/** A pending event larger than this is no usage chunk: pass it on rather than hold it. */
const MAX_PENDING = 1024 * 1024;
const EMPTY = Buffer.alloc(0);
const EMPTY_CHOICES = /"choices"\s*:\s*\[\s*\]/;

/** Index just past the last blank line (the end of the last complete event), or -1. */
function lastEventEnd(buf: Buffer): number {
  // Most chunks are whole events: their end is the buffer's, found without searching.
  const n = buf.length;
  if (n >= 2 && buf[n - 1] === 0x0a) {
    if (buf[n - 2] === 0x0a) return n;
    if (n >= 4 && buf[n - 2] === 0x0d && buf[n - 3] === 0x0a && buf[n - 4] === 0x0d) return n;
  }
  const lf = buf.lastIndexOf("\n\n");
  const crlf = buf.lastIndexOf("\r\n\r\n");
  return Math.max(lf === -1 ? -1 : lf + 2, crlf === -1 ? -1 : crlf + 4);
}

const USAGE_KEY = Buffer.from('"usage"');

/**
 * Whether any `"usage"` member in `buf` has a value other than null. A stream
 * that asked for usage carries `"usage":null` in every chunk; this byte check
 * spares decoding and splitting each of them (bench/README.md, "Payload sizes").
 */
function hasUsageValue(buf: Buffer): boolean {
  for (let at = buf.indexOf(USAGE_KEY); at !== -1; at = buf.indexOf(USAGE_KEY, at + USAGE_KEY.length)) {
    let i = at + USAGE_KEY.length;
    while (buf[i] === 0x20 || buf[i] === 0x09 || buf[i] === 0x0d || buf[i] === 0x0a) i++;
    if (buf[i] !== 0x3a) return true; // not a member (": " expected): let the full check judge
    i++;
    while (buf[i] === 0x20 || buf[i] === 0x09 || buf[i] === 0x0d || buf[i] === 0x0a) i++;
    if (buf[i] !== 0x6e /* n(ull) */) return true;
  }
  return false;
}

/** An OpenAI chunk that only carries usage: `"choices": []` and a usage object. */
function isUsageOnly(event: string): boolean {
  if (!event.includes('"usage"') || !EMPTY_CHOICES.test(event)) return false;
  const data = event
    .split(/\r?\n/)
    .filter((l) => l.startsWith("data:"))
    .map((l) => l.slice(5).trimStart())
    .join("\n");
  try {
    const chunk = JSON.parse(data) as { choices?: unknown; usage?: unknown } | null;
    return (
      Array.isArray(chunk?.choices) &&
      chunk.choices.length === 0 &&
      chunk.usage !== null &&
      typeof chunk.usage === "object"
    );
  } catch {
    return false;
  }
}

/**
 * Removes the usage-only chunk from an OpenAI SSE stream whose client did not
 * ask for it (the gateway did, to count tokens). Every other event passes
 * byte for byte as soon as it is complete: only the unfinished tail of a
 * chunk waits for its end, which an SSE client would wait for anyway.
 */
export class UsageChunkFilter {
  private pending: Buffer = EMPTY;

  push(chunk: Uint8Array): Buffer {
    const buf =
      this.pending.length > 0
        ? Buffer.concat([this.pending, chunk])
        : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const end = lastEventEnd(buf);
    if (end === -1) {
      this.pending = buf.length > MAX_PENDING ? EMPTY : buf;
      return buf.length > MAX_PENDING ? buf : EMPTY;
    }
    this.pending = end === buf.length ? EMPTY : Buffer.from(buf.subarray(end));
    return this.drop(buf.subarray(0, end));
  }

  /** What is left when the upstream ends (an event without its blank line). */
  end(): Buffer {
    const rest = this.pending;
    this.pending = EMPTY;
    return rest.length > 0 && isUsageOnly(rest.toString("utf8")) ? EMPTY : rest;
  }

  private drop(complete: Buffer): Buffer {
    if (!hasUsageValue(complete)) return complete;
    const parts = complete.toString("utf8").split(/(\r?\n\r?\n)/);
    let kept = "";
    let dropped = false;
    // parts alternate: event, separator, event, separator, ..., "" (the text after the last blank line).
    for (let i = 0; i < parts.length; i += 2) {
      const event = parts[i]!;
      const sep = parts[i + 1] ?? "";
      if (isUsageOnly(event)) dropped = true;
      else kept += event + sep;
    }
    return dropped ? Buffer.from(kept) : complete;
  }
}
