import { AppError } from "@tollgate/shared";
import type { Context, Next } from "koa";
import type { AppContext } from "../context.js";
import { getOrg } from "../repositories/orgs.js";
import type { AdminActor } from "./admin-auth.js";
import { confineOrganization, enforceRole } from "./admin-credentials.js";
import { idOf } from "./schemas.js";

/** Admin calls act on this organization; without the header, the default one. */
const ORG_HEADER = "tollgate-organization";

/** Resolves the organization of an admin call (orgs are never deleted, so known ids are cached). */
export function resolveOrganization(app: AppContext) {
  const known = new Set<string>([app.defaultOrgId]);
  const roles = enforceRole(app);
  return async (ctx: Context, next: Next) => {
    const header = ctx.get(ORG_HEADER);
    const actor = ctx.state.actor as AdminActor | undefined;
    // An admin token or a member acts on its own organization, whatever the header says.
    const confined = actor ? confineOrganization(actor, header || undefined) : undefined;
    if (confined) {
      ctx.state.orgId = confined;
      return roles(ctx, next);
    }
    if (!header) {
      ctx.state.orgId = app.defaultOrgId;
      return roles(ctx, next);
    }
    const parsed = idOf("org").safeParse(header);
    if (!parsed.success) {
      throw new AppError("invalid_request", "Tollgate-Organization must be an org_… id", {
        field: "Tollgate-Organization",
      });
    }
    if (!known.has(header)) {
      if (!(await getOrg(app.db, header))) {
        throw new AppError("not_found", `organization ${header} not found`, { field: "Tollgate-Organization" });
      }
      known.add(header);
    }
    ctx.state.orgId = header;
    return roles(ctx, next);
  };
}
