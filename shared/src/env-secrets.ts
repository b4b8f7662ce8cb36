import { readFileSync } from "node:fs";
import { ConfigError } from "./config-helpers.js";

type Env = Record<string, string | undefined>;

/**
 * The contents of a secret file: one trailing newline (or CRLF) is dropped,
 * since `echo value > file` and most editors add one; nothing else is touched.
 */
export function readSecretFile(variable: string, path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(
      `${variable} points to ${JSON.stringify(path)}, which cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  const value = text.replace(/\r?\n$/, "");
  if (value === "") throw new ConfigError(`${variable} points to ${JSON.stringify(path)}, which is empty`);
  return value;
}

/**
 * A secret from NAME, or from the file NAME_FILE names (a mounted Kubernetes or
 * Docker secret), read once. Both set is a ConfigError naming the two
 * variables; no message ever carries a value.
 */
export function envSecret(env: Env, name: string): string | undefined {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  const hasDirect = direct !== undefined && direct !== "";
  const hasFile = file !== undefined && file !== "";
  if (hasDirect && hasFile) {
    throw new ConfigError(`${name} and ${name}_FILE are both set: set one of them (the value, or the file holding it)`);
  }
  if (hasFile) return readSecretFile(`${name}_FILE`, file);
  return hasDirect ? direct : undefined;
}

/**
 * A copy of `env` where each of `names` holds its secret, read from NAME_FILE
 * when that is how it was given, and no NAME_FILE remains: the rest of the
 * config reads NAME as if it had been set directly.
 */
export function resolveSecretFiles(env: Env, names: readonly string[]): Env {
  const out: Env = { ...env };
  for (const name of names) {
    const value = envSecret(env, name);
    delete out[`${name}_FILE`];
    if (value !== undefined) out[name] = value;
  }
  return out;
}
