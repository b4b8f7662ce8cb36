import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";

/** What reached the upstream, for asserting that nothing reached it that should not. */
export interface McpServerHit {
  httpMethod: string;
  /** JSON-RPC method of a POST; null for GET/DELETE or an unparsable body. */
  rpcMethod: string | null;
  /** tools/call's tool name. */
  tool: string | null;
  sessionId: string | null;
  authorization: string | null;
  /** The header named by `authHeader`, if any. */
  authHeaderValue: string | null;
}

export interface FakeMcpServerOptions {
  /** Server name announced in initialize. */
  name?: string;
  /** Answer POSTs with one JSON body instead of an SSE stream. */
  jsonResponses?: boolean;
  /** Required credential: `authorization: Bearer <bearer>` ... */
  bearer?: string;
  /** ... or `<authHeader.name>: <authHeader.value>`. */
  authHeader?: { name: string; value: string };
}

/**
 * A real MCP server (the official SDK's McpServer over Streamable HTTP, one
 * session per client) with tools: echo, add, whoami, secret_tool, hold (answers
 * when the test calls release()), and count_slowly which streams progress
 * notifications before its result.
 */
export class FakeMcpServer {
  readonly hits: McpServerHit[] = [];
  readonly #transports = new Map<string, StreamableHTTPServerTransport>();
  #held: Array<() => void> = [];
  #heldWaiters: Array<() => void> = [];
  readonly #server: Server;
  #url = "";

  constructor(private readonly options: FakeMcpServerOptions = {}) {
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    });
  }

  get url(): string {
    return this.#url;
  }

  /** Sessions currently open. */
  get sessions(): number {
    return this.#transports.size;
  }

  /** Calls of the `hold` tool currently waiting for release(). */
  get held(): number {
    return this.#held.length;
  }

  /** Resolves once `n` calls of `hold` wait. */
  async untilHeld(n: number): Promise<void> {
    while (this.#held.length < n) await new Promise<void>((r) => this.#heldWaiters.push(r));
  }

  /** Lets every waiting `hold` call answer. */
  release(): void {
    const held = this.#held;
    this.#held = [];
    for (const r of held) r();
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.#server.listen(0, "127.0.0.1", r));
    this.#url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/mcp`;
    return this.#url;
  }

  async stop(): Promise<void> {
    this.release();
    for (const t of this.#transports.values()) await t.close().catch(() => undefined);
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  #mcpServer(): McpServer {
    const server = new McpServer({ name: this.options.name ?? "fake-mcp", version: "1.0.0" });
    server.registerTool(
      "echo",
      { description: "Echoes its text", inputSchema: { text: z.string() } },
      async ({ text }) => ({
        content: [{ type: "text", text }],
      }),
    );
    server.registerTool(
      "add",
      { description: "Adds two numbers", inputSchema: { a: z.number(), b: z.number() } },
      async ({ a, b }) => ({
        content: [{ type: "text", text: String(a + b) }],
      }),
    );
    server.registerTool("whoami", { description: "Names the server" }, async () => ({
      content: [{ type: "text", text: this.options.name ?? "fake-mcp" }],
    }));
    server.registerTool("secret_tool", { description: "A tool most keys may not call" }, async () => ({
      content: [{ type: "text", text: "secret result" }],
    }));
    server.registerTool("hold", { description: "Answers once the test calls release()" }, async () => {
      await new Promise<void>((r) => {
        this.#held.push(r);
        for (const w of this.#heldWaiters.splice(0)) w();
      });
      return { content: [{ type: "text", text: "released" }] };
    });
    server.registerTool(
      "count_slowly",
      {
        description: "Counts to n, reporting progress on the way",
        inputSchema: { n: z.number().int().min(1).max(50) },
      },
      async ({ n }, extra) => {
        const token = extra._meta?.progressToken;
        for (let i = 1; i <= n; i++) {
          if (token !== undefined) {
            await extra.sendNotification({
              method: "notifications/progress",
              params: { progressToken: token, progress: i, total: n },
            });
          }
          await new Promise((r) => setImmediate(r));
        }
        return { content: [{ type: "text", text: `counted to ${n}` }] };
      },
    );
    return server;
  }

  #authorized(req: IncomingMessage): boolean {
    if (this.options.bearer !== undefined) return req.headers.authorization === `Bearer ${this.options.bearer}`;
    if (this.options.authHeader !== undefined)
      return req.headers[this.options.authHeader.name.toLowerCase()] === this.options.authHeader.value;
    return true;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: unknown;
    if (req.method === "POST") {
      const chunks: Buffer[] = [];
      for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        body = undefined;
      }
    }
    const sessionId = typeof req.headers["mcp-session-id"] === "string" ? req.headers["mcp-session-id"] : null;
    const m = body as { method?: unknown; params?: { name?: unknown } } | undefined;
    this.hits.push({
      httpMethod: req.method ?? "",
      rpcMethod: typeof m?.method === "string" ? m.method : null,
      tool: m?.method === "tools/call" && typeof m.params?.name === "string" ? m.params.name : null,
      sessionId,
      authorization: req.headers.authorization ?? null,
      authHeaderValue: this.options.authHeader
        ? ((req.headers[this.options.authHeader.name.toLowerCase()] as string | undefined) ?? null)
        : null,
    });
    if (!this.#authorized(req)) {
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: "unauthorized" }));
      return;
    }
    let transport = sessionId === null ? undefined : this.#transports.get(sessionId);
    if (transport === undefined) {
      if (sessionId !== null || req.method !== "POST" || !isInitializeRequest(body)) {
        res.writeHead(sessionId !== null ? 404 : 400, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            jsonrpc: "2.0",
            id: null,
            error: { code: -32000, message: sessionId !== null ? "Session not found" : "No session" },
          }),
        );
        return;
      }
      const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: this.options.jsonResponses ?? false,
        onsessioninitialized: (id) => {
          this.#transports.set(id, t);
        },
      });
      t.onclose = () => {
        if (t.sessionId !== undefined) this.#transports.delete(t.sessionId);
      };
      await this.#mcpServer().connect(t);
      transport = t;
    }
    await transport.handleRequest(req, res, body);
  }
}
