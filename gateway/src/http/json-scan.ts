import { isAscii } from "node:buffer";

/**
 * Helpers that keep the gateway's cost per request flat in the
 * prompt's size: a body is parsed once (JSON.parse is also what validates it,
 * for the 400 a malformed body gets), never decoded twice, never re-serialized
 * whole. See bench/README.md ("Payload sizes").
 */

/**
 * The body as text for JSON.parse and the scans below. An ASCII body (most
 * prompts; Python's json escapes anything else) is copied as one-byte text,
 * which is what UTF-8 decoding would give for it, at a fraction of the cost.
 */
export function bodyText(body: Buffer): string {
  return isAscii(body) ? body.toString("latin1") : body.toString("utf8");
}

const blank = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * The index of the quote that closes the JSON string whose content starts at
 * `from`, or -1: a native search for quotes (String#indexOf, inlined by V8,
 * unlike a Buffer's), an escaped one told by the backslashes before it.
 */
export function closingQuote(text: string, from: number): number {
  let i = from;
  for (;;) {
    i = text.indexOf('"', i);
    if (i < 0) return -1;
    let j = i - 1;
    while (j >= from && text.charCodeAt(j) === 0x5c) j--;
    if ((i - 1 - j) % 2 === 0) return i;
    i++;
  }
}

/** One top-level member of a JSON object: its key, and its value's range in the text. */
interface Member {
  key: string;
  /** The key held a backslash (an escape): its raw text above is not the key JSON.parse reads. */
  escaped: boolean;
  valueStart: number;
  valueEnd: number;
}

/** Past the value that starts at `i` (a string, or anything up to the `,` or `}` ending it at depth 0); -1 if cut short. */
function skipValue(text: string, i: number): number {
  const n = text.length;
  let depth = 0;
  for (; i < n; i++) {
    const b = text.charCodeAt(i);
    if (b === 0x22) {
      i = closingQuote(text, i + 1);
      if (i < 0) return -1;
      if (depth === 0) return i + 1;
    } else if (b === 0x7b || b === 0x5b) depth++;
    else if (b === 0x7d || b === 0x5d) {
      if (depth === 0) return i;
      if (--depth === 0) return i + 1;
    } else if (b === 0x2c && depth === 0) return i;
  }
  return depth === 0 ? i : -1;
}

/**
 * The top-level members of a JSON object body, in order, found by one scan
 * that skips strings natively and never decodes a value. Null when the body is
 * not shaped like an object. Not a validator: JSON.parse has judged the body first.
 */
export function topLevelMembers(text: string): Member[] | null {
  const n = text.length;
  let i = 0;
  while (i < n && blank(text.charCodeAt(i))) i++;
  if (text.charCodeAt(i) !== 0x7b) return null;
  i++;
  const members: Member[] = [];
  for (;;) {
    while (i < n && (blank(text.charCodeAt(i)) || text.charCodeAt(i) === 0x2c)) i++;
    if (i >= n) return null;
    if (text.charCodeAt(i) === 0x7d) return members;
    if (text.charCodeAt(i) !== 0x22) return null;
    const keyEnd = closingQuote(text, i + 1);
    if (keyEnd < 0) return null;
    const key = text.slice(i + 1, keyEnd);
    i = keyEnd + 1;
    while (i < n && blank(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) !== 0x3a) return null;
    i++;
    while (i < n && blank(text.charCodeAt(i))) i++;
    const valueStart = i;
    i = skipValue(text, i);
    if (i < 0) return null;
    let valueEnd = i;
    while (valueEnd > valueStart && blank(text.charCodeAt(valueEnd - 1))) valueEnd--;
    members.push({ key, escaped: key.includes("\\"), valueStart, valueEnd });
  }
}

/**
 * The body with some top-level members set to new values, every other byte
 * as the client sent it: an existing member's value is replaced in place, a
 * new one appended before the closing brace. Null when the bytes cannot be
 * edited with certainty (not an object, an escaped key, a key given twice):
 * the caller then serializes the parsed body instead.
 */
export function withMembers(body: Buffer, edits: Record<string, unknown>): Buffer | null {
  const ascii = isAscii(body);
  const text = ascii ? body.toString("latin1") : body.toString("utf8");
  const members = topLevelMembers(text);
  if (members === null) return null;
  const seen = new Set<string>();
  for (const m of members) {
    if (m.escaped || seen.has(m.key)) return null;
    seen.add(m.key);
  }
  let close = text.length;
  while (close > 0 && blank(text.charCodeAt(close - 1))) close--;
  close--;
  if (text.charCodeAt(close) !== 0x7d) return null;
  const replaced: Array<[number, number, string]> = [];
  let appended = "";
  for (const [key, value] of Object.entries(edits)) {
    const json = JSON.stringify(value);
    const m = members.find((x) => x.key === key);
    if (m) replaced.push([m.valueStart, m.valueEnd, json]);
    else appended += `${members.length > 0 || appended !== "" ? "," : ""}${JSON.stringify(key)}:${json}`;
  }
  replaced.sort((a, b) => a[0] - b[0]);
  if (ascii) {
    // One byte per character: the client's bytes are spliced, never re-encoded.
    const parts: Buffer[] = [];
    let at = 0;
    for (const [start, end, value] of replaced) {
      parts.push(body.subarray(at, start), Buffer.from(value));
      at = end;
    }
    parts.push(body.subarray(at, close), Buffer.from(appended), body.subarray(close));
    return Buffer.concat(parts);
  }
  let out = "";
  let at = 0;
  for (const [start, end, value] of replaced) {
    out += text.slice(at, start) + value;
    at = end;
  }
  return Buffer.from(out + text.slice(at, close) + appended + text.slice(close), "utf8");
}
