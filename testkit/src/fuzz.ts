/** A small seeded PRNG (mulberry32) and generators of hostile input, so fuzz runs are reproducible. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const chars = (
    n: number,
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_./%?&=:;\"'{}[]\\ \u00e9\u4e2d\u0000\u202e",
  ) => Array.from({ length: n }, () => alphabet[int(alphabet.length)]).join("");
  /** A JSON value of arbitrary shape. */
  const json = (depth = 0): unknown => {
    switch (int(depth > 3 ? 5 : 8)) {
      case 0:
        return null;
      case 1:
        return next() < 0.5;
      case 2:
        return pick([0, -1, 1.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 42]);
      case 3:
        return chars(int(40));
      case 4:
        return pick(["", "x".repeat(5000), "never", "30d", "user_", "team_", "ak_", "2001-01-01T00:00:00Z"]);
      case 5:
        return Array.from({ length: int(4) }, () => json(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = int(5); i > 0; i--)
          o[
            pick([
              "name",
              "user_id",
              "team_id",
              "external_id",
              "tpm_limit",
              "expires_at",
              "allowed_models",
              "ip_allowlist",
              "metadata",
              chars(6),
            ])
          ] = json(depth + 1);
        return o;
      }
    }
  };
  return { next, int, pick, chars, json };
}

/** `depth` nested arrays. */
export function deepJson(depth: number): string {
  return "[".repeat(depth) + "]".repeat(depth);
}
