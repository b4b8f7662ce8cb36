import type { IncomingMessage } from "node:http";
import { presentedCredential } from "../auth/authenticate.js";
import type { KeyRecord } from "../auth/key-index.js";
import type { AppContext } from "../context.js";
import type { McpServerDenial, McpToolDenial } from "../mcp/access-policy.js";
import type { McpCaller } from "../mcp/mcp-proxy.js";
import { newRequestInfo, writeHttpError, type McpRequestInfo } from "../mcp/messages.js";
import { sessionKeyOf } from "../mcp/session-id.js";
import { reserve } from "../quota/enforce.js";
import { Reservation } from "../quota/lease.js";
import { refusalError } from "./4-quota-gate.js";
import type { RequestRecord } from "./6-request-record.js";
import type { RouteHandler } from "./route.js";

/** JSON-RPC methods counted by name in metrics; anything else is `other`. */
const METHOD_LABELS = new Set([
  "initialize",
  "ping",
  "tools/list",
  "tools/call",
  "resources/list",
  "resources/read",
  "prompts/list",
  "prompts/get",
  "stream",
  "session/delete",
]);

/** `/mcp` → null (the aggregate); `/mcp/{server}` → the server name; anything deeper is no MCP path. */
export function mcpServerOfPath(path: string): string | null | undefined {
  if (path === "/mcp") return null;
  const name = path.slice("/mcp/".length);
  if (name.length === 0 || name.includes("/")) return undefined;
  try {
    return decodeURIComponent(name);
  } catch {
    return undefined;
  }
}

/**
 * `/mcp` and `/mcp/{server}`, after the gateway's usual admission (key state,
 * brute force, authentication, IP scope): the MCP proxy or the aggregate
 * answers, and each JSON-RPC request (not a notification) counts against the
 * key's requests-per-minute and concurrency limits once its server is allowed. Denials by the key's MCP policy are audited; the request
 * log row names the server, the tool and the outcome.
 */
export const mcpRoute: RouteHandler = async (ctx, req, res, rec, key) => {
  const path = (req.url ?? "/").split("?")[0]!.replace(/\/$/, "");
  const server = mcpServerOfPath(path);
  const info = newRequestInfo(server ?? null);
  rec.mcp = info;
  if (server === undefined) {
    info.outcome = "unknown_server";
    writeHttpError(
      res,
      404,
      "mcp_server_not_found",
      `no MCP endpoint at ${JSON.stringify(path.slice(0, 200))}: use /mcp or /mcp/{server}`,
    );
    return;
  }
  const credential = presentedCredential(req.headers).token;
  let reservation: Reservation | null = null;
  const caller: McpCaller = {
    keyId: key.id,
    policy: key.policy,
    sessionKey: sessionKeyOf(credential ?? ""),
    admit: async () => {
      reservation = await admit(ctx, key, rec);
    },
  };
  try {
    if (server === null) await ctx.mcp.aggregate.handle(req, res, caller, info);
    else await ctx.mcp.proxy.handle(req, res, caller, server, info);
  } finally {
    if (reservation !== null) ctx.quota.manager.settle(reservation, { tokens: 0, costMicroUsd: 0 });
    record(ctx, req, rec, info);
  }
};

/** Only requests per minute and concurrency: an MCP call spends no tokens. */
async function admit(ctx: AppContext, key: KeyRecord, rec: RequestRecord): Promise<Reservation | null> {
  const specs = ctx.quota.limits.of(key).filter((s) => s.metric === "rpm" || s.metric === "concurrency");
  if (specs.length === 0) return null;
  let r = reserve(ctx.quota.manager, ctx.prices, specs, "mcp", "", {});
  if (r instanceof Promise) r = await r;
  if (r instanceof Reservation) return r;
  rec.error = `quota_${r.spec.metric}`;
  ctx.metrics.quotaRefused(r.spec.scope, r.spec.metric);
  (rec.mcp as McpRequestInfo).outcome = "rate_limited";
  throw refusalError(r, key);
}

function serverLabel(ctx: AppContext, server: string | null): string {
  if (server === null) return "*";
  return ctx.mcp.servers.get(server) !== undefined ? server : "unknown";
}

function record(ctx: AppContext, req: IncomingMessage, rec: RequestRecord, info: McpRequestInfo): void {
  if (info.outcome !== "ok" && rec.error === null) rec.error = `mcp_${info.outcome}`;
  ctx.metrics.mcpRequest(
    serverLabel(ctx, info.server),
    info.method !== null && METHOD_LABELS.has(info.method) ? info.method : "other",
    info.outcome,
  );
  if (info.denial !== null) audit(ctx, req, rec, info.denial);
}

/** Never the key, the session id or an argument: who, which server and tool, and why. */
function audit(
  ctx: AppContext,
  req: IncomingMessage,
  rec: RequestRecord,
  denial: McpServerDenial | McpToolDenial,
): void {
  ctx.logWriter.audit({
    at: new Date(ctx.clock.now()).toISOString(),
    event: "mcp_denied",
    keyId: rec.keyId,
    revision: null,
    detail: {
      code: denial.code,
      reason: denial.reason,
      server: denial.server,
      ...("tool" in denial ? { tool: denial.tool } : {}),
      key_id: rec.keyId,
      ephemeral: rec.ephemeral,
      ip: req.socket.remoteAddress ?? null,
      method: req.method,
    },
  });
}
