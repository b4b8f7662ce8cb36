import { StringDecoder } from "node:string_decoder";
import { resolveAuth, type CredentialLookup } from "./credentials.js";
import type { McpServerRecord } from "./server-index.js";
import { SseSplitter } from "./sse.js";
import { readText, type McpUpstreamClient, type UpstreamAnswer } from "./upstream.js";

export const GATEWAY_PROTOCOL_VERSION = "2025-06-18";

export class UpstreamCallError extends Error {
  constructor(
    message: string,
    readonly code: "mcp_upstream_unreachable" | "mcp_upstream_credential_missing" | "mcp_upstream_bad_answer",
  ) {
    super(message);
  }
}

interface Session {
  /** Null for a server that runs without sessions. */
  id: string | null;
  protocolVersion: string;
}

/**
 * The gateway as an MCP client of each upstream, for the aggregated /mcp:
 * one upstream session per (aggregated session, server) on this gateway, opened
 * on first use. A session that moves to another gateway opens its own there.
 * Bounded: the oldest sessions are forgotten first (the upstream ends them on its own).
 */
export class UpstreamSessions {
  #sessions = new Map<string, Promise<Session>>();
  #servers = new Map<string, McpServerRecord>();
  #nextId = 1;
  /**
   * Ids of the gateway's own requests (initialize, tools/list). Strings with a
   * prefix no MCP client uses, so they never collide with the ids of a client's
   * calls in flight in the same upstream session.
   */
  #id(): string {
    return `tollgate-gw-${this.#nextId++}`;
  }

  constructor(
    private readonly upstream: McpUpstreamClient,
    private readonly credentials: CredentialLookup,
    private readonly maxSessions = 10_000,
  ) {}

  #headers(server: McpServerRecord, session: Session | null): Record<string, string> {
    const auth = resolveAuth(server.auth, this.credentials);
    if (!auth.ok)
      throw new UpstreamCallError(
        `MCP server "${server.name}" is not usable from this gateway: ${auth.message}`,
        "mcp_upstream_credential_missing",
      );
    const headers: Record<string, string> = {
      accept: "application/json, text/event-stream",
      "content-type": "application/json",
    };
    if (session !== null) {
      headers["mcp-protocol-version"] = session.protocolVersion;
      if (session.id !== null) headers["mcp-session-id"] = session.id;
    }
    if (auth.header !== null) headers[auth.header[0]] = auth.header[1];
    return headers;
  }

  async #send(
    server: McpServerRecord,
    session: Session | null,
    message: unknown,
    signal?: AbortSignal,
  ): Promise<UpstreamAnswer> {
    const headers = this.#headers(server, session);
    try {
      return await this.upstream.send({
        method: "POST",
        url: new URL(server.url),
        headers,
        body: JSON.stringify(message),
        signal,
      });
    } catch {
      throw new UpstreamCallError(`MCP server "${server.name}" could not be reached`, "mcp_upstream_unreachable");
    }
  }

  async #open(server: McpServerRecord): Promise<Session> {
    const id = this.#id();
    const answer = await this.#send(server, null, {
      jsonrpc: "2.0",
      id,
      method: "initialize",
      params: {
        protocolVersion: GATEWAY_PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: "tollgate-gateway", version: "1" },
      },
    });
    const reply = await readReply(answer, id, server.name);
    const result = reply.result as { protocolVersion?: unknown } | undefined;
    const sessionHeader = answer.headers["mcp-session-id"];
    const session: Session = {
      id: typeof sessionHeader === "string" && sessionHeader !== "" ? sessionHeader : null,
      protocolVersion: typeof result?.protocolVersion === "string" ? result.protocolVersion : GATEWAY_PROTOCOL_VERSION,
    };
    const done = await this.#send(server, session, { jsonrpc: "2.0", method: "notifications/initialized" });
    done.body.resume();
    return session;
  }

  #session(scope: string, server: McpServerRecord): Promise<Session> {
    const key = `${scope}\n${server.id}\n${server.url}`;
    let s = this.#sessions.get(key);
    if (s === undefined) {
      s = this.#open(server);
      s.catch(() => this.#sessions.delete(key));
      this.#sessions.set(key, s);
      this.#servers.set(key, server);
      if (this.#sessions.size > this.maxSessions) this.#close(this.#sessions.keys().next().value!);
    }
    return s;
  }

  /** Forgets a session and ends it upstream (best effort: the upstream expires it anyway). */
  #close(key: string): void {
    const session = this.#sessions.get(key);
    const server = this.#servers.get(key);
    this.#sessions.delete(key);
    this.#servers.delete(key);
    if (session === undefined || server === undefined) return;
    session
      .then(async (s) => {
        if (s.id === null) return;
        const answer = await this.upstream.send({
          method: "DELETE",
          url: new URL(server.url),
          headers: this.#headers(server, s),
        });
        answer.body.resume();
      })
      .catch(() => undefined);
  }

  /** Sends one request in the scope's session with `server`; re-opens the session once if the upstream forgot it (404). */
  async request(
    scope: string,
    server: McpServerRecord,
    message: { id: string | number },
    signal?: AbortSignal,
  ): Promise<UpstreamAnswer> {
    for (let attempt = 0; ; attempt++) {
      const session = await this.#session(scope, server);
      const answer = await this.#send(server, session, message, signal);
      if (answer.status !== 404 || session.id === null || attempt > 0) return answer;
      answer.body.resume();
      this.#sessions.delete(`${scope}\n${server.id}\n${server.url}`);
      this.#servers.delete(`${scope}\n${server.id}\n${server.url}`);
    }
  }

  /** Sends a request and reads its JSON-RPC reply. */
  async call(
    scope: string,
    server: McpServerRecord,
    method: string,
    params: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const id = this.#id();
    const answer = await this.request(scope, server, { jsonrpc: "2.0", id, method, params } as { id: string });
    return readReply(answer, id, server.name);
  }

  /** The client ended its aggregated session: end its upstream sessions on this gateway. */
  forget(scope: string): void {
    for (const key of [...this.#sessions.keys()]) if (key.startsWith(`${scope}\n`)) this.#close(key);
  }
}

/** The JSON-RPC reply with `id`, from a JSON body or an SSE stream. */
export async function readReply(
  answer: UpstreamAnswer,
  id: string | number,
  server: string,
): Promise<Record<string, unknown>> {
  const bad = (why: string) =>
    new UpstreamCallError(`MCP server "${server}" answered badly: ${why}`, "mcp_upstream_bad_answer");
  if (answer.status >= 400) {
    answer.body.resume();
    throw bad(`HTTP ${answer.status}`);
  }
  const type = String(answer.headers["content-type"] ?? "");
  if (type.startsWith("text/event-stream")) {
    const splitter = new SseSplitter();
    const decoder = new StringDecoder("utf8");
    for await (const chunk of answer.body as AsyncIterable<Buffer>) {
      for (const event of splitter.push(decoder.write(chunk))) {
        const m = tryParse(event.data);
        if (m !== null && m.id === id && ("result" in m || "error" in m)) {
          answer.body.destroy();
          return m;
        }
      }
    }
    throw bad("the stream ended without a reply");
  }
  const m = tryParse(await readText(answer.body, 8 * 1024 * 1024).catch(() => ""));
  if (m === null) throw bad("not JSON-RPC");
  return m;
}

function tryParse(text: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
