import type { z } from "zod";
import { resyncKeys, writeWithChanges } from "../changes/write-with-changes.js";
import type { Db } from "../db/database.js";
import { audit, auditWrite } from "../http/audit.js";
import { page } from "../http/pagination.js";
import { defineRoute } from "../http/route.js";
import { getByIdRoute, orNotFound } from "./get-by-id.js";
import { pageOf } from "./response-schemas.js";

/** What the endpoints of one resource share. */
export interface Resource<T> {
  /** The collection, `/internal/teams`; one row is `<path>/:id`. */
  path: string;
  /** Names the resource in 404s and in its audit actions (`team.create`). */
  noun: string;
  id: z.ZodType<string>;
  /** The row's schema, for the OpenAPI document. */
  response: z.ZodType;
  find(db: Db, orgId: string, id: string): Promise<T | undefined>;
}

/** `POST <path>`: `insert` checks and writes the row, in one transaction with its audit entry; 201 with the row. */
interface Create<T, B> {
  body: z.ZodType<B>;
  insert(trx: Db, orgId: string, input: B): Promise<T>;
}

/** `GET <path>`: a page of the organization's rows in id order. */
interface List<T, Q> {
  query: z.ZodType<Q>;
  list(db: Db, orgId: string, query: Q): Promise<T[]>;
}

/**
 * `PATCH <path>/:id`: `update` checks and writes the row found by id; when one of
 * `syncedFields` changed, the keys that carry them to the gateways (`keysOf`) are
 * re-synced in the same transaction.
 */
interface Update<T, B> {
  body: z.ZodType<B>;
  update(trx: Db, orgId: string, id: string, input: B, before: T): Promise<T>;
  syncedFields: readonly (keyof T)[];
  keysOf(trx: Db, orgId: string, id: string): Promise<string[]>;
}

/**
 * Create, list, get and update of an organization's teams or users, in that order:
 * the same transaction, audit entry and key re-sync around what each resource checks.
 */
export function resourceRoutes<T extends { id: string }, C, Q extends { limit: number }, U>(
  r: Resource<T>,
  o: { create: Create<T, C>; list: List<T, Q>; update: Update<T, U> },
) {
  return [
    createRoute(r, o.create),
    listRoute(r, o.list),
    getByIdRoute({ path: `${r.path}/:id`, id: r.id, noun: r.noun, find: r.find, response: r.response }),
    updateRoute(r, o.update),
  ];
}

function createRoute<T extends { id: string }, B>(r: Resource<T>, o: Create<T, B>) {
  return defineRoute({
    method: "post",
    path: r.path,
    response: { status: 201, schema: r.response },
    body: o.body,
    async handler({ ctx, body }, app) {
      const input = await body();
      const orgId = ctx.state.orgId;
      const row = await app.db.transaction().execute(async (trx) => {
        const row = await o.insert(trx, orgId, input);
        await auditWrite(trx, ctx, r.noun, "create", row);
        return row;
      });
      ctx.status = 201;
      ctx.body = row;
    },
  });
}

function listRoute<T extends { id: string }, Q extends { limit: number }>(r: Resource<T>, o: List<T, Q>) {
  return defineRoute({
    method: "get",
    path: r.path,
    response: { schema: pageOf(r.response) },
    query: o.query,
    async handler({ ctx, query }, app) {
      const q = query();
      const rows = await o.list(app.db, ctx.state.orgId, q);
      ctx.body = page(rows, q.limit);
    },
  });
}

function updateRoute<T, B>(r: Resource<T>, o: Update<T, B>) {
  return defineRoute({
    method: "patch",
    path: `${r.path}/:id`,
    response: { schema: r.response },
    params: { id: r.id },
    body: o.body,
    async handler({ ctx, params, body }, app) {
      const id = params().id;
      const input = await body();
      const orgId: string = ctx.state.orgId;
      const { result } = await writeWithChanges(app, orgId, async (scope) => {
        const { trx } = scope;
        const before = orNotFound(await r.find(trx, orgId, id), r.noun, id);
        const after = await o.update(trx, orgId, id, input, before);
        if (o.syncedFields.some((field) => after[field] !== before[field])) {
          await resyncKeys(scope, orgId, await o.keysOf(trx, orgId, id));
        }
        await audit(scope, ctx, { action: `${r.noun}.update`, targetType: r.noun, targetId: id, before, after });
        return after;
      });
      ctx.body = result;
    },
  });
}
