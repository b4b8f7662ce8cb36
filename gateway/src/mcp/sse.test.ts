import { describe, expect, it } from "vitest";
import { SseSplitter, replaceData } from "./sse.js";

describe("SseSplitter", () => {
  it("yields whole events across chunk boundaries, joining data lines", () => {
    const s = new SseSplitter();
    expect(s.push('event: message\nid: 7\ndata: {"a":')).toEqual([]);
    const events = s.push("1}\n\ndata: one\ndata: two\r\n\r\ndata: rest");
    expect(events).toEqual([
      { raw: 'event: message\nid: 7\ndata: {"a":1}', data: '{"a":1}' },
      { raw: "data: one\ndata: two", data: "one\ntwo" },
    ]);
    expect(s.rest()).toBe("data: rest");
  });

  it("replaces an event's data and keeps its id and type", () => {
    expect(replaceData('event: message\nid: 7\ndata: {"a":1}', '{"a":2}')).toBe('event: message\nid: 7\ndata: {"a":2}');
  });
});
