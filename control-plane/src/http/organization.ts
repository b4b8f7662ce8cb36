import { AppError } from "@tollgate/shared";
import type { Context, Next } from "koa";
import type { AppContext } from "../context.js";
import { getOrg } from "../repositories/orgs.js";
import { idOf } from "../routes/schemas.js";

/** Admin calls act on this organization; without the header, the default one. */
const ORG_HEADER = "tollgate-organization";

/** Resolves the organization of an admin call (orgs are never deleted, so known ids are cached). */
export function resolveOrganization(app: AppContext) {
  const known = new Set<string>([app.defaultOrgId]);
  return async (ctx: Context, next: Next) => {
    const header = ctx.get(ORG_HEADER);
    if (!header) {
      ctx.state.orgId = app.defaultOrgId;
      return next();
    }
    const parsed = idOf("org").safeParse(header);
    if (!parsed.success) {
      throw new AppError("invalid_request", "Tollgate-Organization must be an org_… id", { field: "Tollgate-Organization" });
    }
    if (!known.has(header)) {
      if (!(await getOrg(app.db, header))) {
        throw new AppError("not_found", `organization ${header} not found`, { field: "Tollgate-Organization" });
      }
      known.add(header);
    }
    ctx.state.orgId = header;
    return next();
  };
}
