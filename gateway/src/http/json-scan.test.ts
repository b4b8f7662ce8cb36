import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bodyText, closingQuote, topLevelMembers, withMembers } from "./json-scan.js";
import { jsonDepthExceeds } from "./read-body.js";

const parse = (b: Buffer) => JSON.parse(b.toString("utf8")) as Record<string, unknown>;

describe("withMembers", () => {
  it("replaces a member in place and keeps every other byte as sent", () => {
    const body = Buffer.from(
      '{ "model" : "openai/gpt-4o",\n  "messages": [{"role":"user","content":"a \\"b\\" {c}"}] }',
    );
    const out = withMembers(body, { model: "gpt-4o" });
    expect(out?.toString()).toBe('{ "model" : "gpt-4o",\n  "messages": [{"role":"user","content":"a \\"b\\" {c}"}] }');
  });

  it("appends a new member before the closing brace, into an empty object too", () => {
    expect(
      withMembers(Buffer.from('{"stream":true} \n'), { stream_options: { include_usage: true } })?.toString(),
    ).toBe('{"stream":true,"stream_options":{"include_usage":true}} \n');
    expect(withMembers(Buffer.from("{ }"), { a: 1, b: "x" })?.toString()).toBe('{ "a":1,"b":"x"}');
  });

  it("keeps non-ASCII text as UTF-8", () => {
    const body = Buffer.from('{"model":"m","messages":[{"content":"héllo ✓ 😀"}]}');
    expect(parse(withMembers(body, { model: "ü", stream_options: { include_usage: true } })!)).toEqual({
      model: "ü",
      messages: [{ content: "héllo ✓ 😀" }],
      stream_options: { include_usage: true },
    });
  });

  it("declines what it cannot edit with certainty: a key given twice or escaped, not an object", () => {
    expect(withMembers(Buffer.from('{"model":"a","model":"b"}'), { model: "c" })).toBeNull();
    expect(withMembers(Buffer.from('{"mod\\u0065l":"a"}'), { model: "c" })).toBeNull();
    expect(withMembers(Buffer.from("[1,2]"), { model: "c" })).toBeNull();
  });

  it("gives what re-serializing the edited object gives, for any JSON object", () => {
    const edits = fc.record(
      { model: fc.string(), stream_options: fc.dictionary(fc.string(), fc.jsonValue()), metadata: fc.jsonValue() },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), edits, fc.boolean(), (obj, e, pretty) => {
        const body = Buffer.from(JSON.stringify(obj, null, pretty ? 2 : undefined));
        const out = withMembers(body, e);
        if (out === null) return;
        expect(JSON.stringify(parse(out))).toBe(JSON.stringify({ ...(parse(body) as object), ...e }));
      }),
      { numRuns: 300 },
    );
  });
});

describe("text scans", () => {
  it("finds the quote that closes a string, past escaped ones", () => {
    const t = '"a\\"b\\\\" x';
    expect(closingQuote(t, 1)).toBe(t.lastIndexOf('"'));
    expect(closingQuote('"abc', 1)).toBe(-1);
  });

  it("lists top-level members only", () => {
    const members = topLevelMembers('{"a":{"model":1},"b":[",",{"c":"}"}],"model":"x"}');
    expect(members?.map((m) => m.key)).toEqual(["a", "b", "model"]);
  });

  it("reads an ASCII body as the UTF-8 decoder would, and any other body as UTF-8", () => {
    for (const s of ['{"a":"b"}', '{"a":"é😀"}', "\u007f"]) expect(bodyText(Buffer.from(s))).toBe(s);
  });

  it("counts depth the same on bytes and on text", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fc.integer({ min: 0, max: 6 }), (s, limit) => {
        expect(jsonDepthExceeds(Buffer.from(s), limit)).toBe(jsonDepthExceeds(bodyText(Buffer.from(s)), limit));
      }),
    );
  });
});
