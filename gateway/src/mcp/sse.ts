/**
 * A minimal reader of text/event-stream for the messages the gateway must look
 * into (a tools/list result to filter, an initialize answer): the `data:` lines
 * of each event, joined. Events it does not touch are passed through verbatim.
 */
export interface SseEvent {
  /** The event's raw text, without the blank line that ends it. */
  raw: string;
  data: string;
}

export class SseSplitter {
  #buffer = "";

  /** The complete events in `chunk` and what came before it. */
  push(chunk: string): SseEvent[] {
    this.#buffer += chunk.replace(/\r\n?/g, "\n");
    const out: SseEvent[] = [];
    let end = this.#buffer.indexOf("\n\n");
    while (end !== -1) {
      const raw = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      out.push({ raw, data: dataOf(raw) });
      end = this.#buffer.indexOf("\n\n");
    }
    return out;
  }

  /** What is left unterminated at the end of the stream. */
  rest(): string {
    return this.#buffer;
  }
}

function dataOf(raw: string): string {
  const lines: string[] = [];
  for (const line of raw.split("\n")) {
    if (line.startsWith("data:")) lines.push(line.slice(line[5] === " " ? 6 : 5));
  }
  return lines.join("\n");
}

/** An event whose data is `message`, keeping the original event's id and type lines. */
export function replaceData(raw: string, message: string): string {
  const kept = raw.split("\n").filter((l) => !l.startsWith("data:"));
  return [...kept, `data: ${message}`].join("\n");
}
