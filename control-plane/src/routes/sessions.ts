import Router from "@koa/router";
import type { Context } from "koa";
import { z } from "zod";
import type { AppContext } from "../context.js";
import {
  actorName,
  csrfMatches,
  csrfTokenFor,
  deleteSession,
  openSession,
  type Session,
  type SessionActor,
} from "../auth/sessions.js";
import { readJsonObject, validate } from "../http/body.js";
import { recordInvalidCredential } from "../http/admin-auth.js";
import { secretEquals } from "../auth/credentials.js";
import {
  CSRF_HEADER,
  clearSessionCookie,
  currentSession,
  sessionError,
  setSessionCookie,
} from "../http/session-auth.js";
import { adminTokenActor, hashAdminToken, looksLikeAdminToken } from "../auth/admin-tokens.js";
import { findAdminTokenByHash } from "../repositories/admin-tokens.js";
import { getUser } from "../repositories/users.js";
import { recordAudit } from "../repositories/audit-log.js";

const signIn = z.strictObject({
  credential: z
    .string({ error: "must be the master key or an admin token, as a string" })
    .min(1, "must not be empty")
    .max(4096, "must be at most 4096 characters"),
});

function sessionBody(session: Session, csrfToken: string) {
  return {
    session: {
      id: session.id,
      created_at: session.createdAt.toISOString(),
      expires_at: session.expiresAt.toISOString(),
      idle_expires_at: session.idleExpiresAt.toISOString(),
      actor: session.actor,
    },
    csrf_token: csrfToken,
  };
}

async function adminTokenSessionActor(app: AppContext, credential: string): Promise<SessionActor | undefined> {
  if (!looksLikeAdminToken(credential)) return undefined;
  const record = await findAdminTokenByHash(app.db, hashAdminToken(credential));
  return record && adminTokenActor(record, app.now());
}

/**
 * Dashboard sign-in: an admin credential (the master key for now) becomes an
 * HttpOnly, SameSite=Strict session cookie plus a CSRF token; the credential
 * itself never stays in the browser. Failed attempts count towards the same
 * per-address block as invalid Bearer keys.
 */
export function sessionRoutes(app: AppContext): Router {
  const router = new Router();

  async function audit(ctx: Context, action: string, session: Session) {
    await recordAudit(app.db, {
      orgId: session.actor.org_id ?? app.defaultOrgId,
      actor: actorName(session.actor),
      action,
      targetType: "dashboard_session",
      targetId: session.id,
      after: {
        actor_kind: session.actor.kind,
        role: session.actor.role,
        client_ip: ctx.ip,
        expires_at: session.expiresAt.toISOString(),
      },
      requestId: ctx.state.requestId,
    });
  }

  router.post("/internal/sessions", async (ctx) => {
    const client = ctx.ip || "unknown";
    const retryAfter = app.bruteForce.retryAfterSeconds(client);
    if (retryAfter > 0) {
      app.metrics.adminAuthFailure("blocked");
      ctx.set("Retry-After", String(retryAfter));
      return sessionError(
        ctx,
        429,
        "too_many_attempts",
        `too many failed sign-ins from this address: retry after ${retryAfter} s`,
      );
    }
    const input = validate(signIn, await readJsonObject(ctx, app.config.maxBodyBytes));
    // The master key acts on every organization; an admin token on its own, with its role.
    const actor: SessionActor | undefined = secretEquals(input.credential, app.config.masterKey)
      ? { kind: "master", id: null, role: "admin", org_id: null }
      : await adminTokenSessionActor(app, input.credential);
    if (!actor) {
      await recordInvalidCredential(app, ctx, client, {
        fields: { client },
        message: "client blocked after repeated failed dashboard sign-ins",
      });
      return sessionError(
        ctx,
        401,
        "invalid_credential",
        "credential: not a valid admin credential (the master key or a live admin token)",
      );
    }
    const opened = await openSession(app.db, actor, app.config.sessions, app.now());
    await audit(ctx, "session.open", opened.session);
    setSessionCookie(ctx, opened.token, opened.session.expiresAt);
    ctx.set("Cache-Control", "no-store");
    ctx.status = 201;
    ctx.body = sessionBody(opened.session, opened.csrfToken);
  });

  router.get("/internal/sessions/current", async (ctx) => {
    const found = await currentSession(app, ctx);
    if (!found) {
      if (ctx.cookies.get("tollgate_session")) clearSessionCookie(ctx);
      return sessionError(ctx, 401, "session_required", "no dashboard session: sign in with POST /internal/sessions");
    }
    ctx.set("Cache-Control", "no-store");
    const body = sessionBody(found.session, csrfTokenFor(found.token));
    // A member's session (opened by SSO) says who they are, so the dashboard can greet them.
    const { kind, id, org_id } = found.session.actor;
    const user = kind === "user" && id && org_id ? await getUser(app.db, org_id, id) : undefined;
    ctx.body = user
      ? {
          ...body,
          session: { ...body.session, actor: { ...body.session.actor, role: user.role, email: user.external_id } },
        }
      : body;
  });

  router.delete("/internal/sessions/current", async (ctx) => {
    const found = await currentSession(app, ctx);
    if (found) {
      if (!csrfMatches(found.token, ctx.get(CSRF_HEADER) || undefined)) {
        return sessionError(
          ctx,
          403,
          "csrf_required",
          `signing out needs the header ${CSRF_HEADER} with the session's csrf_token`,
        );
      }
      await deleteSession(app.db, found.session.id);
      await audit(ctx, "session.close", found.session);
    }
    clearSessionCookie(ctx);
    ctx.status = 204;
  });

  return router;
}
