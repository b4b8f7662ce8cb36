import { AppError, newId } from "@tollgate/shared";
import { z } from "zod";
import { wholeList } from "../http/pagination.js";
import { defineRoute, routeGroup } from "../http/route.js";
import { audit } from "../http/audit.js";
import { findOrgByName, getOrg, insertOrg, listOrgs } from "../repositories/orgs.js";
import { seedDefaultPrices } from "../pricing/seed-prices.js";
import { getByIdRoute } from "./get-by-id.js";
import { orgSchema, pageOf } from "./response-schemas.js";
import { displayName, idOf } from "../http/schemas.js";

const createOrg = z.strictObject({ name: displayName });

export const orgRoutes = routeGroup("orgs", [
  defineRoute({
    method: "post",
    path: "/internal/orgs",
    response: { status: 201, schema: orgSchema },
    body: createOrg,
    async handler({ ctx, body }, app) {
      const input = await body();
      const org = await app.db.transaction().execute(async (trx) => {
        if (await findOrgByName(trx, input.name)) {
          throw new AppError("conflict", `an organization named ${JSON.stringify(input.name)} already exists`, {
            field: "name",
          });
        }
        const org = await insertOrg(trx, { id: newId("org"), name: input.name });
        await audit(trx, ctx, { orgId: org.id, action: "org.create", targetType: "org", targetId: org.id, after: org });
        return org;
      });
      // A new organization starts with the default price table, synced like any change.
      await seedDefaultPrices(app, org.id);
      ctx.status = 201;
      ctx.body = org;
    },
  }),
  defineRoute({
    method: "get",
    path: "/internal/orgs",
    response: { schema: pageOf(orgSchema) },
    async handler({ ctx }, app) {
      ctx.body = wholeList(await listOrgs(app.db));
    },
  }),
  // Any organization by id: http/admin-credentials.ts answers 404 for another one to a confined actor.
  getByIdRoute({
    path: "/internal/orgs/:id",
    id: idOf("org"),
    noun: "organization",
    find: (db, _orgId, id) => getOrg(db, id),
    response: orgSchema,
  }),
]);
