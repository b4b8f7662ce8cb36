import type { Context } from "koa";
import { actorLabel, MASTER_ACTOR, type Actor } from "../auth/roles.js";

/**
 * The actor of an authenticated admin call. Admin authentication stores it on
 * `ctx.state.principal`; a request it did not pass through acts as nobody and
 * must not reach here.
 */
export function requestActor(ctx: Context): Actor {
  const principal = ctx.state.principal as Actor | undefined;
  if (principal) return principal;
  // Before credential resolution names a principal, only the master key authenticated.
  if (ctx.state.actor === "master_key") return MASTER_ACTOR;
  throw new Error("admin call without an authenticated actor");
}

/** The audit log's actor column for this call. */
export function requestActorLabel(ctx: Context): string {
  return actorLabel(requestActor(ctx));
}
