import type { ServerResponse } from "node:http";
import type { AppContext } from "../context.js";
import { UpstreamError, type ProviderResponse } from "../providers/types.js";
import { HttpError, drained } from "./http.js";
import type { RequestRecord } from "./request-record.js";
import { SseUsageTap, parseUsage } from "./usage.js";

/** Maps a failed upstream call to the client's answer, counting it. */
export function upstreamHttpError(ctx: AppContext, err: UpstreamError, rec: RequestRecord): HttpError {
  ctx.metrics.upstreamError(ctx.provider.name, err.reason);
  rec.error = `upstream_${err.reason}`;
  return new HttpError(err.status, err.message, "api_error", err.reason === "timeout" ? "upstream_timeout" : "upstream_unreachable");
}

function countUpstreamStatus(ctx: AppContext, status: number): void {
  if (status >= 500) ctx.metrics.upstreamError(ctx.provider.name, "http_5xx");
  else if (status >= 400) ctx.metrics.upstreamError(ctx.provider.name, "http_4xx");
}

/**
 * Buffers an upstream answer and passes status, content type and bytes on
 * unchanged, reading `usage` when it is JSON.
 */
export async function passBuffered(
  ctx: AppContext,
  res: ServerResponse,
  rec: RequestRecord,
  up: ProviderResponse,
  /** Rewrites a successful JSON answer (e.g. filters the model list); the bytes pass unchanged without it. */
  transform?: (body: Buffer) => Buffer,
): Promise<void> {
  countUpstreamStatus(ctx, up.status);
  const chunks: Buffer[] = [];
  for await (const c of up.body) chunks.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  let body: Buffer = Buffer.concat(chunks);
  if (transform && up.status < 300 && up.contentType?.includes("json")) body = transform(body);
  if (up.status < 300 && up.contentType?.includes("json")) {
    try {
      rec.usage = parseUsage((JSON.parse(body.toString("utf8")) as { usage?: unknown }).usage);
    } catch {
      // The client gets the bytes either way; only the token count is lost.
    }
  }
  if (up.status >= 400) rec.error = `upstream_status_${up.status}`;
  res.writeHead(up.status, { "content-type": up.contentType ?? "application/octet-stream", "content-length": body.length });
  res.end(body);
}

/**
 * Streams an SSE answer through chunk by chunk as it arrives, tapping it for
 * `usage`. A failure after the headers went out can only cut the stream.
 */
export async function passStreaming(ctx: AppContext, res: ServerResponse, rec: RequestRecord, up: ProviderResponse): Promise<void> {
  countUpstreamStatus(ctx, up.status);
  res.writeHead(up.status, {
    "content-type": up.contentType ?? "text/event-stream",
    "cache-control": "no-cache",
    // Tells nginx-style proxies in front of the gateway not to buffer either.
    "x-accel-buffering": "no",
  });
  res.flushHeaders();
  const tap = new SseUsageTap();
  try {
    for await (const chunk of up.body) {
      if (res.destroyed) break;
      tap.push(chunk);
      if (!res.write(chunk)) await drained(res);
    }
  } catch (err) {
    tap.end();
    rec.usage = tap.usage;
    if (res.destroyed) return; // the client left; the abort ended the upstream read
    if (err instanceof UpstreamError) {
      ctx.metrics.upstreamError(ctx.provider.name, err.reason);
      rec.error = `upstream_${err.reason}`;
    } else {
      ctx.metrics.upstreamError(ctx.provider.name, "stream");
      rec.error = "upstream_stream_broken";
    }
    ctx.logger.warn({ requestId: rec.requestId, err: (err as Error).message }, "upstream stream broke; cutting the client stream");
    res.destroy();
    return;
  }
  tap.end();
  rec.usage = tap.usage;
  res.end();
}
