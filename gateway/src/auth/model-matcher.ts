/** A key's allowed_models, compiled once at apply time. */
export interface ModelMatcher {
  /** Patterns without wildcards. */
  readonly exact: ReadonlySet<string>;
  /** Patterns with `*` or `?`, as code points (runs of `*` collapsed). */
  readonly globs: ReadonlyArray<readonly string[]>;
  /** The patterns as synced, for messages. */
  readonly patterns: readonly string[];
}

/**
 * Longer model names match no glob (exact names still match at any length):
 * the requested model comes from the client, and this bounds the matching
 * work of every request.
 */
export const MAX_GLOB_MATCHED_MODEL_LENGTH = 1024;

/** A glob as code points, consecutive `*` collapsed into one. */
function compileGlob(pattern: string): string[] {
  const out: string[] = [];
  for (const ch of pattern) if (!(ch === "*" && out[out.length - 1] === "*")) out.push(ch);
  return out;
}

/**
 * `*` is any run of characters, `?` exactly one code point, everything else
 * literal; anchored at both ends. Greedy with a single backtrack point (the
 * last `*`), so O(model × pattern) at worst: a hostile model name cannot make
 * it explode the way a backtracking regular expression with several `*` can.
 */
function globMatches(p: readonly string[], s: readonly string[]): boolean {
  let i = 0;
  let j = 0;
  let star = -1;
  let mark = 0;
  while (j < s.length) {
    if (i < p.length && p[i] === "*") {
      star = i++;
      mark = j;
    } else if (i < p.length && (p[i] === "?" || p[i] === s[j])) {
      i++;
      j++;
    } else if (star !== -1) {
      i = star + 1;
      j = ++mark;
    } else {
      return false;
    }
  }
  while (i < p.length && p[i] === "*") i++;
  return i === p.length;
}

/** Null when `patterns` is empty: no restriction. */
export function compileModelMatcher(patterns: readonly string[]): ModelMatcher | null {
  if (patterns.length === 0) return null;
  const exact = new Set<string>();
  const globs: string[][] = [];
  for (const p of patterns) {
    if (p.includes("*") || p.includes("?")) globs.push(compileGlob(p));
    else exact.add(p);
  }
  return { exact, globs, patterns: [...patterns] };
}

/** True when `matcher` allows `model`; a null matcher allows everything. */
export function modelAllowed(matcher: ModelMatcher | null, model: string): boolean {
  if (matcher === null) return true;
  if (matcher.exact.has(model)) return true;
  if (matcher.globs.length === 0 || model.length > MAX_GLOB_MATCHED_MODEL_LENGTH) return false;
  // Code points, so `?` takes one character even outside the BMP.
  const chars = Array.from(model);
  return matcher.globs.some((g) => globMatches(g, chars));
}
