import type { Database } from "better-sqlite3";

/** One upstream call of a request: who, and how it ended (an HTTP status, or a transport failure). */
export interface UpstreamAttempt {
  provider: string;
  status?: number;
  reason?: "connect" | "timeout";
  latencyMs: number;
}

export interface RequestLogEntry {
  at: string;
  requestId: string;
  keyId: string | null;
  model: string | null;
  /** The configured provider the model routed to; null when refused before routing. */
  provider: string | null;
  status: number;
  promptTokens: number | null;
  completionTokens: number | null;
  totalTokens: number | null;
  /** Prompt tokens read from / written to the provider's prompt cache. */
  cacheReadTokens: number | null;
  cacheWriteTokens: number | null;
  /** Every upstream call in order, fallbacks included; null when none was made. */
  attempts: UpstreamAttempt[] | null;
  latencyMs: number;
  stream: boolean;
  error: string | null;
  /** The key's metadata JSON object, echoed; null when it has none. */
  metadata: string | null;
  /** Authenticated with an ephemeral token of `keyId` (its parent). */
  ephemeral: boolean;
  /** The ephemeral token's id (`jti`), never the token. */
  ephemeralTokenId: string | null;
  /** USD by the synced price table; null when no price or no usage was known. */
  costUsd: number | null;
  /** An MCP request: the server (as named by the client), the tool of a tools/call, and how it ended. */
  mcp?: { server: string | null; tool: string | null; outcome: string } | null;
}

export interface RequestLogRepository {
  insert(entry: RequestLogEntry): void;
  /** Most recent last; for tests and diagnostics. */
  list(limit?: number): RequestLogEntry[];
}

interface Row {
  at: string;
  request_id: string;
  key_id: string | null;
  model: string | null;
  provider: string | null;
  status: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  total_tokens: number | null;
  cache_read_tokens: number | null;
  cache_write_tokens: number | null;
  attempts: string | null;
  latency_ms: number;
  stream: number;
  error: string | null;
  metadata: string | null;
  ephemeral: number;
  ephemeral_token_id: string | null;
  cost_usd: number | null;
  mcp_server: string | null;
  mcp_tool: string | null;
  mcp_outcome: string | null;
}

// Positional parameters: binding by name costs a lookup per column per row, and this runs for every request.
export const REQUEST_LOG_INSERT_SQL = `INSERT INTO request_log (at, request_id, key_id, model, status, prompt_tokens, completion_tokens, total_tokens, latency_ms, stream, error,
                              metadata, ephemeral, ephemeral_token_id, provider, cache_read_tokens, cache_write_tokens, attempts, cost_usd,
                              mcp_server, mcp_tool, mcp_outcome)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

/** REQUEST_LOG_INSERT_SQL's parameters for an entry. */
export function requestLogParams(e: RequestLogEntry): unknown[] {
  return [
    e.at,
    e.requestId,
    e.keyId,
    e.model,
    e.status,
    e.promptTokens,
    e.completionTokens,
    e.totalTokens,
    e.latencyMs,
    e.stream ? 1 : 0,
    e.error,
    e.metadata,
    e.ephemeral ? 1 : 0,
    e.ephemeralTokenId,
    e.provider,
    e.cacheReadTokens,
    e.cacheWriteTokens,
    e.attempts === null
      ? null
      : JSON.stringify(
          e.attempts.map((a) => ({
            provider: a.provider,
            ...(a.status !== undefined ? { status: a.status } : { reason: a.reason }),
            latency_ms: a.latencyMs,
          })),
        ),
    e.costUsd,
    e.mcp?.server ?? null,
    e.mcp?.tool ?? null,
    e.mcp?.outcome ?? null,
  ];
}

export function createRequestLogRepository(db: Database): RequestLogRepository {
  const insert = db.prepare(REQUEST_LOG_INSERT_SQL);
  const list = db.prepare<[number], Row>(
    `SELECT * FROM (SELECT * FROM request_log ORDER BY id DESC LIMIT ?) ORDER BY id`,
  );
  return {
    insert: (e) => {
      insert.run(requestLogParams(e));
    },
    list: (limit = 1000) =>
      list.all(limit).map((r) => ({
        at: r.at,
        requestId: r.request_id,
        keyId: r.key_id,
        model: r.model,
        provider: r.provider,
        status: r.status,
        promptTokens: r.prompt_tokens,
        completionTokens: r.completion_tokens,
        totalTokens: r.total_tokens,
        cacheReadTokens: r.cache_read_tokens,
        cacheWriteTokens: r.cache_write_tokens,
        attempts: r.attempts === null ? null : parseAttempts(r.attempts),
        latencyMs: r.latency_ms,
        stream: r.stream === 1,
        error: r.error,
        metadata: r.metadata,
        ephemeral: r.ephemeral === 1,
        ephemeralTokenId: r.ephemeral_token_id,
        costUsd: r.cost_usd,
        ...(r.mcp_outcome === null ? {} : { mcp: { server: r.mcp_server, tool: r.mcp_tool, outcome: r.mcp_outcome } }),
      })),
  };
}

function parseAttempts(text: string): UpstreamAttempt[] {
  return (
    JSON.parse(text) as Array<{
      provider: string;
      status?: number;
      reason?: UpstreamAttempt["reason"];
      latency_ms: number;
    }>
  ).map((a) => ({
    provider: a.provider,
    ...(a.status !== undefined ? { status: a.status } : { reason: a.reason }),
    latencyMs: a.latency_ms,
  }));
}
