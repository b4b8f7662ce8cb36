import Router from "@koa/router";
import { AppError, newId } from "@tollgate/shared";
import type { Context, Next } from "koa";
import { z } from "zod";
import type { AppContext } from "../context.js";
import { readJsonObject, validate } from "../http/body.js";
import { recordAudit } from "../repositories/audit-log.js";
import { findOrgByName, getOrg, insertOrg, listOrgs } from "../repositories/orgs.js";
import { seedDefaultPrices } from "../pricing/seed-prices.js";
import { displayName, idOf } from "./schemas.js";

/** Admin calls act on this organization; without the header, the default one. */
export const ORG_HEADER = "tollgate-organization";

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

const createOrg = z.strictObject({ name: displayName });

export function orgRoutes(app: AppContext): Router {
  const router = new Router();

  router.post("/internal/orgs", async (ctx) => {
    const input = validate(createOrg, await readJsonObject(ctx, app.config.maxBodyBytes));
    const org = await app.db.transaction().execute(async (trx) => {
      if (await findOrgByName(trx, input.name)) {
        throw new AppError("conflict", `an organization named ${JSON.stringify(input.name)} already exists`, { field: "name" });
      }
      const org = await insertOrg(trx, { id: newId("org"), name: input.name });
      await recordAudit(trx, {
        orgId: org.id,
        actor: ctx.state.actor,
        action: "org.create",
        targetType: "org",
        targetId: org.id,
        after: org as unknown as Record<string, unknown>,
        requestId: ctx.state.requestId,
      });
      return org;
    });
    // A new organization starts with the default price table, synced like any change.
    await seedDefaultPrices(app, org.id);
    ctx.status = 201;
    ctx.body = org;
  });

  router.get("/internal/orgs", async (ctx) => {
    ctx.body = { data: await listOrgs(app.db), next_cursor: null };
  });

  router.get("/internal/orgs/:id", async (ctx) => {
    const id = validate(idOf("org"), ctx.params.id);
    const org = await getOrg(app.db, id);
    if (!org) throw new AppError("not_found", `organization ${id} not found`, { field: "id" });
    ctx.body = org;
  });

  return router;
}
