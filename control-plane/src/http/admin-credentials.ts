import { AppError } from "@tollgate/shared";
import type { Context, Next } from "koa";
import { adminTokenActor, hashAdminToken, isAdminTokenSecret, looksLikeAdminToken } from "../auth/admin-tokens.js";
import { bearerToken } from "../auth/credentials.js";
import { authorize, isMember, memberKeyId, type Actor } from "../auth/roles.js";
import type { AppContext } from "../context.js";
import { findAdminTokenByHash, findAdminTokenById, touchAdminToken } from "../repositories/admin-tokens.js";
import { getApiKey } from "../repositories/api-keys.js";
import { getUser } from "../repositories/users.js";

/**
 * `Authorization: Bearer tga_…`: an organization-scoped admin token. Anything
 * else is left to the next resolver (the master key).
 */
export async function resolveAdminToken(
  app: Pick<AppContext, "db" | "now">,
  ctx: Context,
): Promise<Actor | "invalid" | undefined> {
  const token = bearerToken(ctx.get("authorization") || undefined);
  if (!token || !isAdminTokenSecret(token)) return undefined;
  if (!looksLikeAdminToken(token)) return "invalid";
  const record = await findAdminTokenByHash(app.db, hashAdminToken(token));
  const now = app.now();
  const actor = record && adminTokenActor(record, now);
  if (!actor) return "invalid";
  await touchAdminToken(app.db, actor.id!, now);
  return actor;
}

/**
 * The actor a dashboard session stands for, checked again on every request: a
 * session opened by an admin token ends when the token is revoked or expires, and
 * a member's role is the one the database holds now (a demotion applies at once).
 */
export async function revalidateSessionActor(
  app: Pick<AppContext, "db" | "now">,
  actor: Actor,
): Promise<Actor | undefined> {
  if (actor.kind === "master") return actor;
  if (actor.kind === "admin_token") {
    const record = await findAdminTokenById(app.db, actor.id!);
    return record && adminTokenActor(record, app.now());
  }
  const user = actor.org_id && actor.id ? await getUser(app.db, actor.org_id, actor.id) : undefined;
  return user && { ...actor, role: user.role };
}

/**
 * A confined actor (admin token, member) acts on its own organization only: the
 * organization header may repeat it, never name another.
 */
export function confineOrganization(actor: Actor, header: string | undefined): string | undefined {
  if (actor.org_id === null) return undefined;
  if (header && header !== actor.org_id) {
    throw new AppError(
      "forbidden",
      "this credential acts only on its own organization: drop the Tollgate-Organization header or name that organization",
      {
        field: "Tollgate-Organization",
      },
    );
  }
  return actor.org_id;
}

/**
 * Role checks before routing: read_only tokens only read, members reach only
 * their own keys (another user's key is a 404, as if it did not exist), and only
 * the master key creates organizations.
 */
export function enforceRole(app: Pick<AppContext, "db">) {
  return async (ctx: Context, next: Next) => {
    const actor = ctx.state.actor as Actor | undefined;
    // Only the session routes run without an actor; they authenticate themselves.
    if (!actor) return next();
    const decision = authorize(actor, ctx.method, ctx.path);
    if (!decision.allowed) throw new AppError("forbidden", decision.reason);
    if (isMember(actor)) {
      const keyId = memberKeyId(ctx.path);
      if (keyId && keyId !== "bulk") {
        const key = /^ak_[0-9a-z]{26}$/.test(keyId) ? await getApiKey(app.db, ctx.state.orgId, keyId) : undefined;
        if (key && key.user_id !== actor.id)
          throw new AppError("not_found", `api key ${keyId} not found`, { field: "id" });
      }
      if (ctx.method === "GET" && ctx.path === "/internal/users") {
        const self = await getUser(app.db, ctx.state.orgId, actor.id);
        ctx.body = { data: self ? [self] : [], next_cursor: null };
        return;
      }
      if (ctx.method === "GET" && ctx.path === "/internal/api-keys") {
        const asked = ctx.query.user_id;
        if (asked !== undefined && asked !== actor.id)
          throw new AppError("forbidden", "a member may only list their own API keys", { field: "user_id" });
        ctx.query = { ...ctx.query, user_id: actor.id };
      }
    }
    if (
      actor.org_id !== null &&
      /^\/internal\/orgs\/[^/]+$/.test(ctx.path) &&
      ctx.path !== `/internal/orgs/${actor.org_id}`
    ) {
      throw new AppError("not_found", "organization not found", { field: "id" });
    }
    await next();
    // The organization list of a confined actor is its own organization.
    if (actor.org_id !== null && ctx.method === "GET" && ctx.path === "/internal/orgs" && ctx.status === 200) {
      const body = ctx.body as { data: Array<{ id: string }> };
      ctx.body = { ...body, data: body.data.filter((o) => o.id === actor.org_id) };
    }
  };
}
