import { randomUUID } from "node:crypto";
import { AppError, isAppError } from "@tollgate/shared";
import type { Context, Next } from "koa";
import type { AppContext } from "../context.js";
import { isConnectionError } from "../db/database-health.js";
import { dataExceptionToAppError } from "./input-guard.js";

/** Maps every error to a JSON body with a stable code; unknown errors become a bare 500. */
export function errorHandler(app: AppContext) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new AppError("not_found", `no route for ${ctx.method} ${ctx.path}`);
      }
    } catch (err) {
      if (isConnectionError(err)) {
        app.dbHealth.markFailure(err);
        ctx.status = 503;
        ctx.set("Retry-After", "1");
        ctx.body = new AppError("database_unavailable", "the database is unreachable; retry shortly").toJSON();
        return;
      }
      const appErr = toAppError(err);
      if (appErr) {
        ctx.status = appErr.status;
        ctx.body = appErr.toJSON();
        if (appErr.status === 405 && (err as { headers?: Record<string, string> }).headers?.Allow) {
          ctx.set("Allow", (err as { headers: Record<string, string> }).headers.Allow!);
        }
        return;
      }
      app.logger.error(
        { err, requestId: ctx.state.requestId, method: ctx.method, path: ctx.path },
        "admin request failed",
      );
      ctx.status = 500;
      ctx.body = {
        error: {
          code: "internal_error",
          message: "internal error; see the control-plane log for request " + ctx.state.requestId,
        },
      };
    }
  };
}

function toAppError(err: unknown): AppError | undefined {
  if (isAppError(err)) return err;
  const e = err as { status?: number; code?: string; message?: string };
  // @koa/router's allowedMethods throws http-errors with these statuses.
  if (e?.status === 405) return new AppError("method_not_allowed", e.message ?? "method not allowed");
  if (e?.status === 501) return new AppError("method_not_allowed", e.message ?? "method not implemented");
  // Postgres unique violation: a concurrent create of the same name.
  if (e?.code === "23505") return new AppError("conflict", "a resource with the same unique field already exists");
  const data = dataExceptionToAppError(err);
  if (data) return data;
  return undefined;
}

export function requestContext(app: AppContext) {
  return async (ctx: Context, next: Next) => {
    const started = process.hrtime.bigint();
    const incoming = ctx.get("x-request-id");
    ctx.state.requestId = /^[\w.-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    ctx.set("x-request-id", ctx.state.requestId);
    try {
      await next();
    } finally {
      const route = (ctx as Context & { _matchedRoute?: string })._matchedRoute ?? "unmatched";
      app.metrics.httpRequest(ctx.method, String(route), ctx.status, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };
}
