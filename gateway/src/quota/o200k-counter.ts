/**
 * Counts o200k_base tokens the way tiktoken encodes: split the text with the
 * encoding's regex, then per piece either the whole piece is a token or its
 * UTF-8 bytes are merged pairwise, lowest rank first. Special-token strings
 * such as "<|endoftext|>" are plain text here, as for any user content.
 */
import { hashBytes, type O200kTables, rankOf, rankOfHashed } from "./o200k-tables.js";

/**
 * o200k_base's pre-tokenizer, exactly as gpt-tokenizer writes it
 * (`O200K_TOKEN_SPLIT_REGEX`, a test holds the two equal). Note that JS's
 * `\s` also matches U+FEFF and not U+0085, unlike tiktoken's Rust regex.
 */
const CONTRACTION = String.raw`(?:'(?:[sS]|[dD]|[mM]|[tT]|[lL][lL]|[vV][eE]|[rR][eE]))?`;
export const O200K_SPLIT_PATTERN = String.raw`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+${CONTRACTION}|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*${CONTRACTION}|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

export interface O200kCounterOptions {
  /**
   * Pieces longer than this many bytes merge through a heap, O(n log n),
   * rather than tiktoken's scan, O(n²), which long unbroken pieces (CJK text,
   * a run of letters) would otherwise pay (bench/README.md, `pnpm bench:tokenizer`).
   */
  heapAbove?: number;
  /**
   * Pieces that need merging remember their count in this many slots (a
   * power of two; 0 turns it off). Direct-mapped and keyed by the piece's
   * bytes, compared in full: exact, bounded, and holding no strings.
   */
  cacheSlots?: number;
}

/** The longest piece, in bytes, that the cache keeps. */
const CACHE_PIECE_BYTES = 128;

const NONE = 0x7fffffff;

export function createO200kCounter(tables: O200kTables, options: O200kCounterOptions = {}): (text: string) => number {
  const heapAbove = options.heapAbove ?? 256;
  const cacheSlots = options.cacheSlots ?? 4096;
  if (cacheSlots & (cacheSlots - 1)) throw new Error("cacheSlots must be a power of two");
  const cacheLength = new Uint8Array(cacheSlots);
  const cacheCount = new Uint8Array(cacheSlots);
  const cacheBytes = new Uint8Array(cacheSlots * CACHE_PIECE_BYTES);
  const split = new RegExp(O200K_SPLIT_PATTERN, "gu");
  let buf = new Uint8Array(1024);
  let starts = new Int32Array(257);
  let ranks = new Int32Array(257);

  /** UTF-8 of `text[from..to)` into `buf`; its length, negated when it had a lone surrogate. */
  function encode(text: string, from: number, to: number): number {
    if ((to - from) * 3 > buf.length) buf = new Uint8Array((to - from) * 6);
    const b = buf;
    let n = 0;
    let lone = false;
    for (let i = from; i < to; i++) {
      const c = text.charCodeAt(i);
      if (c < 0x80) b[n++] = c;
      else if (c < 0x800) {
        b[n++] = 0xc0 | (c >> 6);
        b[n++] = 0x80 | (c & 0x3f);
      } else if (c < 0xd800 || c > 0xdfff) {
        b[n++] = 0xe0 | (c >> 12);
        b[n++] = 0x80 | ((c >> 6) & 0x3f);
        b[n++] = 0x80 | (c & 0x3f);
      } else {
        const d = i + 1 < to ? text.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          b[n++] = 0xf0 | (cp >> 18);
          b[n++] = 0x80 | ((cp >> 12) & 0x3f);
          b[n++] = 0x80 | ((cp >> 6) & 0x3f);
          b[n++] = 0x80 | (cp & 0x3f);
          i++;
        } else {
          // As TextEncoder does: U+FFFD for a lone surrogate.
          b[n++] = 0xef;
          b[n++] = 0xbf;
          b[n++] = 0xbd;
          lone = true;
        }
      }
    }
    return lone ? -n : n;
  }

  function pairRank(st: Int32Array, i: number, parts: number): number {
    if (i + 2 > parts) return NONE;
    const r = rankOf(tables, buf, st[i]!, st[i + 2]!);
    return r < 0 ? NONE : r;
  }

  /** tiktoken's byte-pair merge: repeatedly merge the lowest-ranked adjacent pair, leftmost on a tie. */
  function mergeScan(n: number): number {
    if (starts.length <= n) {
      starts = new Int32Array(n + 1);
      ranks = new Int32Array(n + 1);
    }
    const st = starts;
    const rk = ranks;
    for (let i = 0; i <= n; i++) st[i] = i;
    let parts = n;
    for (let i = 0; i < n; i++) rk[i] = pairRank(st, i, parts);
    while (parts > 1) {
      let min = NONE;
      let at = -1;
      for (let i = 0; i < parts - 1; i++) {
        if (rk[i]! < min) {
          min = rk[i]!;
          at = i;
        }
      }
      if (at < 0) break;
      for (let i = at + 1; i < parts; i++) {
        st[i] = st[i + 1]!;
        rk[i] = rk[i + 1]!;
      }
      parts--;
      rk[at] = pairRank(st, at, parts);
      if (at > 0) rk[at - 1] = pairRank(st, at - 1, parts);
    }
    return parts;
  }

  /** The same merges in the same order, on a linked list with a min-heap of (rank, position). */
  function mergeHeap(n: number): number {
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const rank = new Int32Array(n);
    // Each merge pushes at most two entries; stale ones are skipped when popped.
    const heap = new Float64Array(3 * n);
    let size = 0;
    const SHIFT = 2 ** 32;

    const push = (key: number): void => {
      let i = size++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (heap[parent]! <= key) break;
        heap[i] = heap[parent]!;
        i = parent;
      }
      heap[i] = key;
    };
    const pop = (): number => {
      const top = heap[0]!;
      const last = heap[--size]!;
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= size) break;
        if (child + 1 < size && heap[child + 1]! < heap[child]!) child++;
        if (heap[child]! >= last) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
      return top;
    };
    /** Rank of the part at `p` merged with the one after it. */
    const rankAt = (p: number): number => {
      const q = next[p]!;
      if (q >= n) return NONE;
      const r = rankOf(tables, buf, p, next[q]!);
      return r < 0 ? NONE : r;
    };

    for (let p = 0; p < n; p++) {
      next[p] = p + 1;
      prev[p] = p - 1;
    }
    for (let p = 0; p < n; p++) {
      rank[p] = rankAt(p);
      if (rank[p] !== NONE) push(rank[p]! * SHIFT + p);
    }
    let parts = n;
    while (size > 0) {
      const key = pop();
      const r = Math.floor(key / SHIFT);
      const p = key - r * SHIFT;
      // A part's rank only ever changes to another token's (its bytes grow), so an equal rank means a live entry.
      if (rank[p] !== r) continue;
      const q = next[p]!;
      next[p] = next[q]!;
      if (next[q]! < n) prev[next[q]!] = p;
      rank[q] = -1;
      parts--;
      rank[p] = rankAt(p);
      if (rank[p] !== NONE) push(rank[p]! * SHIFT + p);
      const before = prev[p]!;
      if (before >= 0) {
        rank[before] = rankAt(before);
        if (rank[before] !== NONE) push(rank[before]! * SHIFT + before);
      }
    }
    return parts;
  }

  function samePiece(slot: number, n: number): boolean {
    const at = slot * CACHE_PIECE_BYTES;
    for (let i = 0; i < n; i++) if (cacheBytes[at + i] !== buf[i]) return false;
    return true;
  }

  return function countO200kTokens(text: string): number {
    let count = 0;
    split.lastIndex = 0;
    for (let m = split.exec(text); m !== null; m = split.exec(text)) {
      const from = m.index;
      const to = from + m[0].length;
      let n = encode(text, from, to);
      if (n === 1) {
        count++;
        continue;
      }
      const lone = n < 0;
      if (lone) n = -n;
      const hash = hashBytes(buf, 0, n);
      // gpt-tokenizer looks a piece up whole only when it is well-formed UTF-16; so do we.
      if (!lone && rankOfHashed(tables, hash, buf, 0, n) >= 0) {
        count++;
        continue;
      }
      const slot = (hash >>> 16) & (cacheSlots - 1);
      if (cacheSlots > 0 && cacheLength[slot] === n && samePiece(slot, n)) {
        count += cacheCount[slot]!;
        continue;
      }
      const parts = n <= heapAbove ? mergeScan(n) : mergeHeap(n);
      count += parts;
      // A piece of at most 128 bytes has at most 128 parts: both fit a byte.
      if (cacheSlots > 0 && n <= CACHE_PIECE_BYTES) {
        cacheLength[slot] = n;
        cacheCount[slot] = parts;
        cacheBytes.set(buf.subarray(0, n), slot * CACHE_PIECE_BYTES);
      }
    }
    return count;
  };
}
