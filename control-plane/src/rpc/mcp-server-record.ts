import { create } from "@bufbuild/protobuf";
import { McpServerAuthType, McpServerSchema, type McpServer } from "@tollgate/shared";
import type { McpServerSyncRecord } from "../repositories/mcp-servers.js";

/** Change-log payload → wire message: the credential's reference, never a credential. */
export function toMcpServer(r: McpServerSyncRecord): McpServer {
  const auth = r.auth;
  return create(McpServerSchema, {
    id: r.id,
    name: r.name,
    url: r.url,
    authType:
      auth.type === "bearer"
        ? McpServerAuthType.BEARER
        : auth.type === "header"
          ? McpServerAuthType.HEADER
          : McpServerAuthType.NONE,
    authHeader: auth.type === "header" ? auth.header_name : "",
    credentialRef: auth.type === "none" ? "" : auth.credential_ref,
  });
}
