/**
 * Helpers for each service's config.ts, the only readers of process.env. A
 * wrong value stops the process at start with a message naming the variable.
 */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

/**
 * How a configuration error refers to the value it refuses: by its shape, never its content.
 * A secret put in the wrong variable (an API key in LOG_LEVEL) must not land in the log.
 */
export function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "string")
    return v.trim() === ""
      ? "an empty value"
      : `a value of ${v.length} character${v.length === 1 ? "" : "s"}, not shown`;
  if (typeof v === "number" || typeof v === "boolean" || v === null) return String(v);
  return `a ${Array.isArray(v) ? "list" : typeof v}`;
}

export function envString(env: Env, name: string, fallback: string): string {
  const v = env[name];
  return v === undefined || v === "" ? fallback : v;
}

export function envOptional(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === "" ? undefined : v;
}

export function envRequired(env: Env, name: string, hint: string): string {
  const v = env[name];
  if (v === undefined || v === "") throw new ConfigError(`${name} is required: ${hint}`);
  return v;
}

export function envPort(env: Env, name: string, fallback: number): number {
  const v = env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new ConfigError(`${name} must be a TCP port between 0 and 65535, got ${describeValue(v)}`);
  }
  return n;
}

export function envInt(env: Env, name: string, fallback: number, min: number, max: number): number {
  const v = env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got ${describeValue(v)}`);
  }
  return n;
}

/** An integer that may be left unset (undefined: no value). */
export function envOptionalInt(env: Env, name: string, min: number, max: number): number | undefined {
  const v = env[name];
  return v === undefined || v === "" ? undefined : envInt(env, name, 0, min, max);
}

export function envUrl(env: Env, name: string, fallback?: string): string | undefined {
  const v = envOptional(env, name) ?? fallback;
  if (v === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new ConfigError(`${name} must be an absolute http(s) URL, got ${describeValue(v)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`${name} must use http or https, got another scheme`);
  }
  return v.replace(/\/+$/, "");
}

export function envEnum<T extends string>(env: Env, name: string, values: readonly T[], fallback: T): T {
  const v = env[name];
  if (v === undefined || v === "") return fallback;
  if (!(values as readonly string[]).includes(v)) {
    throw new ConfigError(`${name} must be one of ${values.join(", ")}, got ${describeValue(v)}`);
  }
  return v as T;
}

/**
 * A boolean setting: exactly `true`/`false` or `1`/`0` (unset or empty: the
 * fallback), the one spelling every variable accepts; anything else is a
 * ConfigError naming the variable.
 */
export function envBool(env: Env, name: string, fallback: boolean): boolean {
  const v = env[name];
  if (v === undefined || v === "") return fallback;
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  // on/off and yes/no carry no secret: naming them makes the fix obvious.
  const hint = /^(on|off|yes|no)$/i.test(v) ? `, got ${JSON.stringify(v)}` : `, got ${describeValue(v)}`;
  throw new ConfigError(`${name} must be true or false (or 1 or 0)${hint}`);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses durations like `500ms`, `10s`, `5m`, `1h`, `7d` into milliseconds. */
export function parseDurationMs(value: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!);
}

export function envDurationMs(env: Env, name: string, fallbackMs: number): number {
  const v = env[name];
  if (v === undefined || v === "") return fallbackMs;
  const ms = parseDurationMs(v);
  if (ms === undefined) {
    throw new ConfigError(`${name} must be a duration such as 500ms, 10s, 5m, 1h or 7d, got ${describeValue(v)}`);
  }
  return ms;
}
