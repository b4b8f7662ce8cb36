import type { McpServerAuth } from "./server-index.js";

/**
 * Upstream MCP credentials never travel through the control plane: a server's
 * auth holds a reference `env:MCP_SECRET_<NAME>`, and each gateway resolves it
 * from its own environment (config.ts reads every MCP_SECRET_* variable). The
 * prefix keeps an admin from pointing a server at another secret of the
 * gateway (a provider's API key) and sending it to a host of their choosing.
 */
export const CREDENTIAL_REF_RE = /^env:(MCP_SECRET_[A-Z0-9_]{1,100})$/;

export type CredentialLookup = (variable: string) => string | undefined;

export type ResolvedAuth = { ok: true; header: [string, string] | null } | { ok: false; message: string };

/** The header to send upstream, or why it cannot be built (never the value). */
export function resolveAuth(auth: McpServerAuth, lookup: CredentialLookup): ResolvedAuth {
  if (auth.type === "none") return { ok: true, header: null };
  const variable = CREDENTIAL_REF_RE.exec(auth.credentialRef)?.[1];
  if (variable === undefined)
    return { ok: false, message: `credential reference ${JSON.stringify(auth.credentialRef)} is not env:MCP_SECRET_…` };
  const value = lookup(variable);
  if (value === undefined || value === "") return { ok: false, message: `${variable} is not set on this gateway` };
  return {
    ok: true,
    header: auth.type === "bearer" ? ["authorization", `Bearer ${value}`] : [auth.headerName.toLowerCase(), value],
  };
}
