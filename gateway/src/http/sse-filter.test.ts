import { describe, expect, it } from "vitest";
import { UsageChunkFilter } from "./sse-filter.js";

const content = (text: string) =>
  `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"${text}"}}],"usage":null}`;
const usageOnly = `data: {"id":"c","object":"chat.completion.chunk","choices": [ ],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`;

/** Feeds `pieces` through a filter and returns what the client receives. */
function through(pieces: string[]): { text: string; writes: string[] } {
  const f = new UsageChunkFilter();
  const writes = pieces.map((p) => f.push(Buffer.from(p)).toString("utf8"));
  writes.push(f.end().toString("utf8"));
  return { text: writes.join(""), writes };
}

describe("UsageChunkFilter", () => {
  it("drops only the usage-only event, whatever its spacing and line endings, however it is split", () => {
    for (const nl of ["\n", "\r\n"]) {
      const events = [content("a"), content("b"), usageOnly, "data: [DONE]"].map((e) => e + nl + nl);
      const stream = events.join("");
      const expected = events.filter((_, i) => i !== 2).join("");
      for (let cut = 1; cut < stream.length; cut += 7)
        expect(through([stream.slice(0, cut), stream.slice(cut)]).text).toBe(expected);
    }
  });

  it("passes each complete event on at once and holds only an unfinished one", () => {
    const { writes } = through([`${content("a")}\n\n${content("b")}`, `\n\n`]);
    expect(writes).toEqual([`${content("a")}\n\n`, `${content("b")}\n\n`, ""]);
  });

  it("leaves a chunk carrying choices and usage, and a final event without its blank line, alone", () => {
    const both = `data: {"choices":[{"index":0,"delta":{}}],"usage":{"total_tokens":3}}\n\n`;
    expect(through([both, content("z")]).text).toBe(both + content("z"));
    expect(through([usageOnly]).text).toBe("");
  });

  it("passes chunks whose usage is null untouched, the very bytes, however the member is spaced", () => {
    const f = new UsageChunkFilter();
    for (const sep of [":null", " : null", ":\n null"]) {
      const chunk = Buffer.from(`${content("a").replace(":null", sep)}\n\n`);
      expect(f.push(chunk).equals(chunk)).toBe(true);
    }
    expect(through([`${content("a")}\n\n${usageOnly}\n\n`]).text).toBe(`${content("a")}\n\n`);
  });
});
