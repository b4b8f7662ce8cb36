import type { Context, Middleware, Next } from "koa";
import type { AppContext } from "../context.js";
import { csrfMatches, deleteSession, findSession, type Session } from "../auth/sessions.js";
import { revalidateSessionActor } from "./admin-credentials.js";
import type { AdminActor } from "./admin-auth.js";

export const SESSION_COOKIE = "tollgate_session";
export const CSRF_HEADER = "x-csrf-token";
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** The session routes authenticate themselves (signing in needs no session yet). */
const SESSION_PATHS = new Set(["/internal/sessions", "/internal/sessions/current"]);

/** Writes the error envelope directly: these codes belong to the session contract. */
export function sessionError(ctx: Context, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.body = { error: { code, message } };
}

/** The cookie value, when the request carries one that looks like ours. */
export function sessionCookie(ctx: Context): string | undefined {
  const value = ctx.cookies.get(SESSION_COOKIE);
  return value && /^[\w-]{20,100}$/.test(value) ? value : undefined;
}

export function setSessionCookie(ctx: Context, token: string, expiresAt: Date): void {
  ctx.cookies.set(SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: "strict",
    path: "/",
    secure: ctx.secure,
    expires: expiresAt,
    overwrite: true,
  });
}

export function clearSessionCookie(ctx: Context): void {
  ctx.cookies.set(SESSION_COOKIE, "", {
    httpOnly: true,
    sameSite: "strict",
    path: "/",
    secure: ctx.secure,
    expires: new Date(0),
    overwrite: true,
  });
}

/** The live session of this request's cookie, or undefined. */
export async function currentSession(
  app: AppContext,
  ctx: Context,
): Promise<{ session: Session; token: string } | undefined> {
  const token = sessionCookie(ctx);
  if (!token) return undefined;
  const session = await findSession(app.db, token, app.config.sessions, app.now());
  return session ? { session, token } : undefined;
}

/**
 * Admin authentication for /internal/*: a Bearer credential goes to `bearerAuth`
 * as before; without one, a dashboard session cookie authenticates exactly as the
 * credential it was opened with, and unsafe methods must echo its CSRF token.
 */
export function withSessions(app: AppContext, bearerAuth: Middleware): Middleware {
  return async (ctx: Context, next: Next) => {
    if (SESSION_PATHS.has(ctx.path)) return next();
    if (ctx.get("authorization") || !ctx.cookies.get(SESSION_COOKIE)) return bearerAuth(ctx, next);
    const found = await currentSession(app, ctx);
    if (!found) {
      clearSessionCookie(ctx);
      return sessionError(ctx, 401, "session_required", "the dashboard session is expired or unknown: sign in again");
    }
    if (UNSAFE.has(ctx.method) && !csrfMatches(found.token, ctx.get(CSRF_HEADER) || undefined)) {
      return sessionError(
        ctx,
        403,
        "csrf_required",
        `a ${ctx.method} authenticated by the session cookie needs the header ${CSRF_HEADER} with the session's csrf_token`,
      );
    }
    // The session acts as the credential it was opened with, as that credential stands now:
    // a revoked admin token or a deleted member ends it, a demotion applies at once.
    const actor: AdminActor | undefined = await revalidateSessionActor(app, found.session.actor);
    if (!actor) {
      await deleteSession(app.db, found.session.id);
      clearSessionCookie(ctx);
      return sessionError(
        ctx,
        401,
        "session_required",
        "the credential this session was opened with is revoked or gone: sign in again",
      );
    }
    ctx.state.actor = actor;
    ctx.state.session = found.session;
    await next();
  };
}
