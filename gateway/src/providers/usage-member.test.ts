import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { topLevelMember, usageOfBuffer } from "./usage.js";

const KEY = Buffer.from("usage");

/** What JSON.parse says the top-level usage is, for comparison. */
function parsedUsage(text: string): unknown {
  const v = JSON.parse(text) as unknown;
  return v !== null && typeof v === "object" && !Array.isArray(v) && "usage" in v
    ? (v as { usage: unknown }).usage
    : undefined;
}

function scanned(text: string): unknown {
  const body = Buffer.from(text);
  const span = topLevelMember(body, KEY);
  return span === null ? undefined : JSON.parse(body.toString("utf8", span[0], span[1]));
}

describe("topLevelMember: the usage of an answer without parsing its content", () => {
  it("agrees with JSON.parse on random JSON objects, compact and indented, with and without a usage member", () => {
    const value = fc.jsonValue();
    const answer = fc.record(
      { id: fc.string(), choices: fc.array(value, { maxLength: 3 }), usage: value, note: fc.string(), tail: value },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(answer, fc.constantFrom(undefined, 2, "\t"), (obj, indent) => {
        const text = JSON.stringify(obj, null, indent);
        expect(scanned(text)).toEqual(parsedUsage(text));
      }),
      { seed: 20261123, numRuns: 500 },
    );
  });

  it("takes the last of duplicated keys, as JSON.parse does, and ignores usage members nested deeper or inside strings", () => {
    for (const text of [
      '{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}',
      '{"choices":[{"message":{"content":"\\"usage\\": {\\"prompt_tokens\\": 99}"}}],"usage":{"prompt_tokens":3}}',
      '{"choices":[{"usage":{"prompt_tokens":98}}],"x":"usage","usage":{"prompt_tokens":4}}',
      '{"a":"\\\\","usage":  {"prompt_tokens":5}  }',
      '{"u\\u0073age":{"prompt_tokens":97},"usage":{"prompt_tokens":6}}',
      '{"usage":null}',
      '{"usage":7}',
      '{"choices":[]}',
    ]) {
      expect(scanned(text)).toEqual(parsedUsage(text));
    }
  });

  it("finds nothing in what is not a JSON object", () => {
    for (const text of ["[1,2]", '"usage"', "null", "", "   ", "{", '{"usage"']) {
      expect(topLevelMember(Buffer.from(text), KEY)).toBeNull();
    }
  });

  it("reads OpenAI's and Anthropic's usage from the bytes", () => {
    const openai = Buffer.from(
      JSON.stringify({
        id: "c",
        choices: [{ message: { content: "hi" } }],
        usage: {
          prompt_tokens: 9,
          completion_tokens: 5,
          total_tokens: 14,
          prompt_tokens_details: { cached_tokens: 2 },
        },
      }),
    );
    expect(usageOfBuffer("openai", openai)).toEqual({
      promptTokens: 9,
      completionTokens: 5,
      totalTokens: 14,
      cacheReadTokens: 2,
      cacheWriteTokens: null,
    });
    const anthropic = Buffer.from(
      JSON.stringify({
        content: [{ type: "text", text: "hi" }],
        usage: { input_tokens: 25, output_tokens: 15, cache_read_input_tokens: 3 },
      }),
    );
    expect(usageOfBuffer("anthropic", anthropic)).toEqual({
      promptTokens: 25,
      completionTokens: 15,
      totalTokens: 40,
      cacheReadTokens: 3,
      cacheWriteTokens: null,
    });
    expect(usageOfBuffer("openai", Buffer.from('{"usage": {broken'))).toBeNull();
  });
});
