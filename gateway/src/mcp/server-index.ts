/** Upstream authentication of an MCP server; the credential itself is only a reference (see credentials.ts). */
export type McpServerAuth =
  | { type: "none" }
  | { type: "bearer"; credentialRef: string }
  | { type: "header"; headerName: string; credentialRef: string };

/** An MCP server of the organization, as synced. */
export interface McpServerRecord {
  id: string;
  /** Unique in the organization; the path segment of /mcp/{name} and the tool namespace of /mcp. */
  name: string;
  /** The Streamable HTTP endpoint. */
  url: string;
  auth: McpServerAuth;
}

/** The organization's MCP servers by name, in memory: the hot path never reads SQLite. */
export class McpServerIndex {
  #byName = new Map<string, McpServerRecord>();
  #byId = new Map<string, McpServerRecord>();

  get size(): number {
    return this.#byName.size;
  }

  get(name: string): McpServerRecord | undefined {
    return this.#byName.get(name);
  }

  /** Every server, by name. */
  all(): McpServerRecord[] {
    return [...this.#byName.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  replaceAll(servers: readonly McpServerRecord[]): void {
    this.#byName.clear();
    this.#byId.clear();
    for (const s of servers) this.upsert(s);
  }

  upsert(server: McpServerRecord): void {
    // A rename frees the old name.
    const previous = this.#byId.get(server.id);
    if (previous !== undefined) this.#byName.delete(previous.name);
    this.#byName.set(server.name, server);
    this.#byId.set(server.id, server);
  }

  delete(id: string): void {
    const previous = this.#byId.get(id);
    if (previous === undefined) return;
    this.#byId.delete(id);
    this.#byName.delete(previous.name);
  }
}
