import { ConfigError } from "./config-helpers.js";
import { readSecretFile } from "./env-secrets.js";

/** The variables an MCP server's `credential_ref` (env:MCP_SECRET_<NAME>) may name. */
export const MCP_SECRET_VARIABLE_RE = /^MCP_SECRET_[A-Z0-9_]{1,100}$/;

/**
 * Every MCP_SECRET_<NAME> of the environment, for config.ts to hand to the
 * services: `MCP_SECRET_<NAME>_FILE` reads the value from a file (a mounted
 * secret), as every other secret setting does; both set is a ConfigError.
 * Values are never logged.
 */
export function mcpSecretsFromEnv(env: Record<string, string | undefined>): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value === "" || !name.startsWith("MCP_SECRET_")) continue;
    if (name.endsWith("_FILE")) {
      const variable = name.slice(0, -"_FILE".length);
      if (!MCP_SECRET_VARIABLE_RE.test(variable)) continue;
      const direct = env[variable];
      if (direct !== undefined && direct !== "") {
        throw new ConfigError(
          `${variable} and ${name} are both set: set one of them (the value, or the file holding it)`,
        );
      }
      out.set(variable, readSecretFile(name, value));
    } else if (MCP_SECRET_VARIABLE_RE.test(name) && !out.has(name)) {
      out.set(name, value);
    }
  }
  return out;
}
