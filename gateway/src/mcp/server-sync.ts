import { McpServerAuthType, type McpServer } from "@tollgate/shared";
import type { McpServerRecord } from "./server-index.js";

/** Wire message → record. An auth type this release does not know leaves the server without credential (its calls fail upstream, never with a guessed header). */
export function mcpServerFromProto(m: McpServer): McpServerRecord {
  const auth: McpServerRecord["auth"] =
    m.authType === McpServerAuthType.BEARER && m.credentialRef !== ""
      ? { type: "bearer", credentialRef: m.credentialRef }
      : m.authType === McpServerAuthType.HEADER && m.credentialRef !== "" && m.authHeader !== ""
        ? { type: "header", headerName: m.authHeader, credentialRef: m.credentialRef }
        : { type: "none" };
  return { id: m.id, name: m.name, url: m.url, auth };
}
