/** A key's allowed_models, compiled once at apply time. */
export interface ModelMatcher {
  /** Patterns without wildcards. */
  readonly exact: ReadonlySet<string>;
  /** Every glob as one anchored alternation; null when there is none. */
  readonly glob: RegExp | null;
  /** The patterns as synced, for messages. */
  readonly patterns: readonly string[];
}

/**
 * A model glob as a regular expression source: `*` is any run of characters,
 * `?` exactly one, everything else is literal (dots included).
 */
export function globSource(pattern: string): string {
  let out = "";
  for (const ch of pattern) {
    if (ch === "*") out += "[^]*";
    else if (ch === "?") out += "[^]";
    else out += ch.replace(/[\\^$.|+()[\]{}/]/g, "\\$&");
  }
  return out;
}

/** Null when `patterns` is empty: no restriction. */
export function compileModelMatcher(patterns: readonly string[]): ModelMatcher | null {
  if (patterns.length === 0) return null;
  const exact = new Set<string>();
  const globs: string[] = [];
  for (const p of patterns) {
    if (p.includes("*") || p.includes("?")) globs.push(globSource(p));
    else exact.add(p);
  }
  // The u flag makes `[^]` one code point, so `?` matches one character even outside the BMP.
  const glob = globs.length === 0 ? null : new RegExp(`^(?:${globs.join("|")})$`, "u");
  return { exact, glob, patterns: [...patterns] };
}

/** True when `matcher` allows `model`; a null matcher allows everything. */
export function modelAllowed(matcher: ModelMatcher | null, model: string): boolean {
  if (matcher === null) return true;
  return matcher.exact.has(model) || (matcher.glob !== null && matcher.glob.test(model));
}
