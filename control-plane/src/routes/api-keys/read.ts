import { decodeCursor, encodeCursor } from "../../http/pagination.js";
import { defineRoute } from "../../http/route.js";
import { getByIdRoute } from "../get-by-id.js";
import type { Db } from "../../db/database.js";
import { getApiKey, listApiKeys } from "../../repositories/api-keys.js";
import { requestTotals } from "./org-request-total.js";
import { apiKeySchema, listedKeySchema, pageOf } from "../response-schemas.js";
import { keyId, listQuery } from "./request-schemas.js";

/** One cache of organization request totals per database (see org-request-total.ts). */
const totals = new WeakMap<Db, ReturnType<typeof requestTotals>>();
const TOTAL_MAX_AGE_MS = 5000;

type KeyCursor = { v: string | number; id: string };

function keyCursor(value: unknown): KeyCursor | undefined {
  const c = value as { v: unknown; id: unknown } | null;
  if (c && (typeof c.v === "string" || typeof c.v === "number") && typeof c.id === "string")
    return { v: c.v, id: c.id };
  return undefined;
}

export const listKeys = defineRoute({
  method: "get",
  path: "/internal/api-keys",
  response: { schema: pageOf(listedKeySchema) },
  summary: "Search, filter, sort and page the organization's keys",
  query: listQuery,
  async handler({ ctx, orgId, query }, app) {
    const q = query();
    const { rows, next } = await listApiKeys(app.db, orgId, {
      limit: q.limit,
      cursor: q.cursor ? decodeCursor(q.cursor, keyCursor) : undefined,
      userId: q.user_id,
      search: q.search,
      status: q.status,
      sort: q.sort,
      order: q.order,
    });
    // Usage: the key's share of all requests the organization's keys have served.
    let cached = totals.get(app.db);
    if (!cached) totals.set(app.db, (cached = requestTotals({ db: app.db, maxAgeMs: TOTAL_MAX_AGE_MS })));
    const total = await cached.get(orgId);
    // A total a few seconds old may trail a busy key's own count: never show more than 100 %.
    const data = rows.map((k) => ({
      ...k,
      usage_pct: total > 0 ? Math.min(100, Math.round((k.requests / total) * 10_000) / 100) : 0,
    }));
    ctx.body = { data, next_cursor: next ? encodeCursor(next) : null };
  },
});

export const getKey = getByIdRoute({
  path: "/internal/api-keys/:id",
  id: keyId,
  noun: "api key",
  find: getApiKey,
  response: apiKeySchema,
});
