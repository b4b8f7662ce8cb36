import type { IncomingMessage, ServerResponse } from "node:http";
import type { AppContext } from "../context.js";
import { sendJson } from "./respond.js";

/** The /readyz body: how fresh the key state is and where it came from. */
function readiness(ctx: AppContext): Record<string, unknown> {
  const s = ctx.syncState;
  const since = s.secondsSinceContact();
  const reason = s.notReadyReason();
  return {
    ready: reason === null,
    reason,
    source: s.source,
    connected: s.connected,
    applied_revision: s.appliedRevision,
    server_revision: s.serverRevision,
    lag: s.lag(),
    seconds_since_contact: since === null ? null : Math.round(since * 1000) / 1000,
    max_staleness_seconds: s.maxStalenessMs === null ? null : s.maxStalenessMs / 1000,
    keys: ctx.keyIndex.size,
    signing_keys: ctx.keyIndex.signingKeyCount,
    cache_recovered: ctx.cacheRecovery !== null,
    auth_disabled: ctx.config.disableAuth,
    // Fleet quotas: degraded = the quota service is unreachable (even-share fallback);
    // usage_outbox = usage reports waiting for the control plane's acknowledgement.
    // clock_offset_ms: added to this host's clock for quota windows (the control plane's time), and where it came from.
    quota: {
      degraded: ctx.quota.manager.degraded,
      leases: ctx.quota.manager.size,
      usage_outbox: ctx.quota.outbox.backlog,
      clock_offset_ms: ctx.quota.clock.offsetMs,
      clock_offset_source: ctx.quota.clock.source,
    },
  };
}

/** The status port: /metrics, /healthz, /readyz. Not for clients; no auth. */
export function createStatusHandler(ctx: AppContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendJson(
        res,
        405,
        { error: { code: "method_not_allowed", message: `Use GET on ${path}.` } },
        { allow: "GET, HEAD" },
      );
      return;
    }
    switch (path) {
      case "/healthz":
        sendJson(res, 200, { status: "ok" });
        return;
      case "/readyz": {
        const body = readiness(ctx);
        sendJson(res, body.ready ? 200 : 503, body);
        return;
      }
      case "/metrics":
        ctx.metrics.text().then(
          (text) => {
            res.writeHead(200, { "content-type": ctx.metrics.registry.contentType });
            res.end(text);
          },
          (err: unknown) => {
            ctx.logger.error({ err }, "metrics collection failed");
            sendJson(res, 500, { error: { code: "internal_error", message: "metrics collection failed" } });
          },
        );
        return;
      default:
        sendJson(res, 404, {
          error: { code: "not_found", message: `Unknown path ${path}; try /metrics, /healthz or /readyz.` },
        });
    }
  };
}
