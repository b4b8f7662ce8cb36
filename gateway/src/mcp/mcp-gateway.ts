import { McpAggregate } from "./mcp-aggregate.js";
import { McpServerProxy } from "./mcp-proxy.js";
import type { McpServerIndex } from "./server-index.js";
import { UpstreamSessions } from "./upstream-session.js";
import { McpUpstreamClient } from "./upstream.js";

/** The gateway's MCP side: the synced servers, the per-server proxy and the aggregated /mcp, on one upstream client. */
export interface McpGateway {
  servers: McpServerIndex;
  proxy: McpServerProxy;
  aggregate: McpAggregate;
  close(): Promise<void>;
}

export interface McpGatewayOptions {
  servers: McpServerIndex;
  /** MCP_SECRET_* values by variable name (config.ts). */
  secrets: ReadonlyMap<string, string>;
  maxMessageBytes: number;
  version: string;
}

export function createMcpGateway(o: McpGatewayOptions): McpGateway {
  const upstream = new McpUpstreamClient();
  const credentials = (variable: string) => o.secrets.get(variable);
  return {
    servers: o.servers,
    proxy: new McpServerProxy({ servers: o.servers, upstream, credentials, maxMessageBytes: o.maxMessageBytes }),
    aggregate: new McpAggregate({
      servers: o.servers,
      sessions: new UpstreamSessions(upstream, credentials),
      maxMessageBytes: o.maxMessageBytes,
      version: o.version,
    }),
    close: () => upstream.close(),
  };
}
