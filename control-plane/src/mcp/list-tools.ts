import type { McpServerAuth } from "../repositories/mcp-servers.js";

/** A tool as the dashboard's picker shows it. */
export interface McpToolInfo {
  name: string;
  description: string;
}

export type ToolListOutcome =
  | { ok: true; tools: McpToolInfo[] }
  | {
      ok: false;
      code: "mcp_credential_missing" | "mcp_upstream_unreachable" | "mcp_upstream_bad_answer";
      message: string;
    };

const PROTOCOL_VERSION = "2025-06-18";
const MAX_PAGES = 20;

/**
 * Asks an MCP server for its tools (initialize, tools/list pages, DELETE of the
 * session), for the dashboard's per-server tool picker. The credential comes
 * from the control plane's own MCP_SECRET_* variables when the server needs
 * one; it is sent to the server only and never appears in the outcome.
 */
export async function listServerTools(
  server: { name: string; url: string; auth: McpServerAuth },
  lookup: (variable: string) => string | undefined,
  timeoutMs = 10_000,
): Promise<ToolListOutcome> {
  const headers: Record<string, string> = {
    accept: "application/json, text/event-stream",
    "content-type": "application/json",
  };
  if (server.auth.type !== "none") {
    const variable = server.auth.credential_ref.slice("env:".length);
    const value = lookup(variable);
    if (!value) {
      return {
        ok: false,
        code: "mcp_credential_missing",
        message: `set ${variable} on the control plane too to list the tools of "${server.name}" (gateways read their own)`,
      };
    }
    if (server.auth.type === "bearer") headers.authorization = `Bearer ${value}`;
    else headers[server.auth.header_name.toLowerCase()] = value;
  }
  const signal = AbortSignal.timeout(timeoutMs);
  let id = 0;
  const call = async (
    method: string,
    params: Record<string, unknown>,
  ): Promise<{ result: Record<string, unknown>; session: string | null }> => {
    const res = await fetch(server.url, {
      method: "POST",
      headers,
      body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
      signal,
    });
    if (!res.ok) throw new BadAnswer(`${method} answered HTTP ${res.status}`);
    const text = await res.text();
    const type = res.headers.get("content-type") ?? "";
    const messages = type.startsWith("text/event-stream")
      ? text.split(/\r?\n\r?\n/).map((e) =>
          e
            .split(/\r?\n/)
            .filter((l) => l.startsWith("data:"))
            .map((l) => l.slice(5).trimStart())
            .join("\n"),
        )
      : [text];
    for (const m of messages) {
      let parsed: { id?: unknown; result?: unknown; error?: { message?: unknown } };
      try {
        parsed = JSON.parse(m);
      } catch {
        continue;
      }
      if (parsed.id !== id) continue;
      if (parsed.error) throw new BadAnswer(`${method} failed: ${String(parsed.error.message ?? "error")}`);
      return { result: (parsed.result ?? {}) as Record<string, unknown>, session: res.headers.get("mcp-session-id") };
    }
    throw new BadAnswer(`${method} got no JSON-RPC answer`);
  };
  try {
    const init = await call("initialize", {
      protocolVersion: PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: "tollgate-control-plane", version: "1" },
    });
    if (init.session) headers["mcp-session-id"] = init.session;
    headers["mcp-protocol-version"] =
      typeof init.result.protocolVersion === "string" ? init.result.protocolVersion : PROTOCOL_VERSION;
    await fetch(server.url, {
      method: "POST",
      headers,
      body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
      signal,
    }).then((r) => r.body?.cancel());
    const tools: McpToolInfo[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const { result } = await call("tools/list", cursor === undefined ? {} : { cursor });
      for (const t of Array.isArray(result.tools) ? result.tools : []) {
        if (typeof t?.name === "string")
          tools.push({ name: t.name, description: typeof t.description === "string" ? t.description : "" });
      }
      if (typeof result.nextCursor !== "string") break;
      cursor = result.nextCursor;
    }
    if (init.session)
      await fetch(server.url, { method: "DELETE", headers, signal })
        .then((r) => r.body?.cancel())
        .catch(() => undefined);
    return { ok: true, tools };
  } catch (err) {
    if (err instanceof BadAnswer)
      return { ok: false, code: "mcp_upstream_bad_answer", message: `MCP server "${server.name}": ${err.message}` };
    return { ok: false, code: "mcp_upstream_unreachable", message: `MCP server "${server.name}" could not be reached` };
  }
}

class BadAnswer extends Error {}
