import type { Readable } from "node:stream";
import { Pool } from "undici";
import type { IncomingHttpHeaders, ServerResponse } from "node:http";

export interface UpstreamAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
}

export interface UpstreamCall {
  method: "GET" | "POST" | "DELETE";
  url: URL;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

/**
 * HTTP to the MCP servers: one undici pool per origin, kept for the gateway's
 * life (the set of servers is admin-defined, so bounded).
 */
export class McpUpstreamClient {
  #pools = new Map<string, Pool>();
  readonly #connectTimeoutMs: number;

  constructor(options: { connectTimeoutMs?: number } = {}) {
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  }

  #pool(origin: string): Pool {
    let pool = this.#pools.get(origin);
    if (pool === undefined) {
      // No body or headers timeout: a tool result may stream for a long time.
      pool = new Pool(origin, { connect: { timeout: this.#connectTimeoutMs }, headersTimeout: 0, bodyTimeout: 0 });
      this.#pools.set(origin, pool);
    }
    return pool;
  }

  async send(call: UpstreamCall): Promise<UpstreamAnswer> {
    const res = await this.#pool(call.url.origin).request({
      method: call.method,
      path: call.url.pathname + call.url.search,
      headers: call.headers,
      body: call.body,
      signal: call.signal,
    });
    return { status: res.statusCode, headers: res.headers as IncomingHttpHeaders, body: res.body };
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.close().catch(() => p.destroy())));
  }
}

/** Reads a whole (small) upstream body as text, up to `limit` bytes. */
export async function readText(body: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      throw new Error(`upstream answer larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Streams the upstream's body to the client; a client that leaves aborts the upstream call. */
export async function pipeAnswer(answer: UpstreamAnswer, res: ServerResponse): Promise<void> {
  try {
    for await (const chunk of answer.body as AsyncIterable<Buffer>) {
      if (!res.write(chunk)) await new Promise<void>((r) => res.once("drain", r).once("close", r));
      if (res.destroyed) break;
    }
    res.end();
  } catch {
    // The upstream or the client went away mid-stream: cut the client's answer.
    res.destroy();
  }
}
