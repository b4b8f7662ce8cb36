import { AppError } from "@tollgate/shared";
import type { Context, Next } from "koa";
import { bearerToken, secretEquals } from "../auth/credentials.js";
import { actorLabel as roleActorLabel, MASTER_ACTOR, type Actor } from "../auth/roles.js";
import type { AppContext } from "../context.js";
import { resolveAdminToken } from "./admin-credentials.js";
import { recordAudit } from "../repositories/audit-log.js";

/**
 * Who made an admin call, placed on `ctx.state.actor`: the master key (every
 * organization), an admin token or an organization member (SSO), each confined
 * to its organization and role. See auth/roles.ts for what each may do.
 */
export type AdminActor = Actor;

/** The audit log's actor column for an actor: `master_key`, `admin_token:adt_…` or `user:user_…`. */
export function actorLabel(actor: AdminActor): string {
  return roleActorLabel(actor);
}

/**
 * One way to authenticate an admin call. Resolvers are asked in order: the first
 * that recognises the credential answers with an actor, or "invalid" for a
 * credential of its kind that is wrong; `undefined` passes to the next one.
 */
export interface AdminCredentialResolver {
  resolve(ctx: Context): Promise<AdminActor | "invalid" | undefined>;
}

/** `Authorization: Bearer <PROXY_MASTER_KEY>`. */
export function masterKeyResolver(app: Pick<AppContext, "config">): AdminCredentialResolver {
  return {
    async resolve(ctx) {
      const token = bearerToken(ctx.get("authorization") || undefined);
      if (!token) return undefined;
      return secretEquals(token, app.config.masterKey) ? MASTER_ACTOR : "invalid";
    },
  };
}

/** `Authorization: Bearer tga_…`: an organization-scoped admin token; asked before the master key. */
export function adminTokenResolver(app: Pick<AppContext, "db" | "now">): AdminCredentialResolver {
  return { resolve: (ctx) => resolveAdminToken(app, ctx) };
}

/**
 * Every /internal route needs an admin credential. A client IP that sends too
 * many invalid credentials is blocked for a while (429 with Retry-After), and
 * that is audited.
 */
export function requireAdmin(
  app: AppContext,
  resolvers: AdminCredentialResolver[] = [adminTokenResolver(app), masterKeyResolver(app)],
) {
  return async (ctx: Context, next: Next) => {
    const client = ctx.ip || "unknown";
    const retryAfter = app.bruteForce.retryAfterSeconds(client);
    if (retryAfter > 0) {
      app.metrics.adminAuthFailure("blocked");
      ctx.set("Retry-After", String(retryAfter));
      throw new AppError(
        "too_many_requests",
        `too many invalid master keys from this address: retry after ${retryAfter} s`,
      );
    }
    let outcome: AdminActor | "invalid" | undefined;
    for (const resolver of resolvers) if ((outcome = await resolver.resolve(ctx)) !== undefined) break;
    if (outcome === undefined) {
      app.metrics.adminAuthFailure("missing");
      throw new AppError(
        "unauthorized",
        "missing master key: send 'Authorization: Bearer $PROXY_MASTER_KEY' (or an admin token)",
      );
    }
    if (outcome === "invalid") {
      await invalidCredential(app, ctx, client);
      throw new AppError("unauthorized", "invalid master key or admin token (unknown, revoked or expired)");
    }
    ctx.state.actor = outcome;
    await next();
  };
}

function invalidCredential(app: AppContext, ctx: Context, client: string): Promise<void> {
  return recordInvalidCredential(app, ctx, client, {
    fields: { client, ttlMs: app.config.bruteForce.ttlMs },
    message: "client blocked after repeated invalid master keys",
  });
}

/**
 * Counts a failed admin credential against the client (the API's bearer check and the
 * dashboard's sign-in share one brute-force budget), and audits the client's block.
 */
export async function recordInvalidCredential(
  app: AppContext,
  ctx: Context,
  client: string,
  blockedLog: { fields: Record<string, unknown>; message: string },
): Promise<void> {
  app.metrics.adminAuthFailure("invalid");
  if (!app.bruteForce.recordFailure(client)) return;
  app.metrics.setBlockedClients(app.bruteForce.blockedCount());
  app.logger.warn(blockedLog.fields, blockedLog.message);
  await recordAudit(app.db, {
    orgId: app.defaultOrgId,
    actor: `ip:${client}`,
    action: "auth.client_blocked",
    targetType: "client_ip",
    targetId: client,
    after: {
      failed_attempts: app.config.bruteForce.maxFailedAttempts,
      blocked_seconds: Math.round(app.config.bruteForce.ttlMs / 1000),
    },
    requestId: ctx.state.requestId,
  });
}
