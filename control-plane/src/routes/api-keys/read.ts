import { decodeCursor, encodeCursor } from "../../http/pagination.js";
import { defineRoute } from "../../http/route.js";
import { getByIdRoute } from "../get-by-id.js";
import { getApiKey, listApiKeys, orgRequestTotal } from "../../repositories/api-keys.js";
import { apiKeySchema, listedKeySchema, pageOf } from "../response-schemas.js";
import { keyId, listQuery } from "./request-schemas.js";

type KeyCursor = { v: string | number; id: string };

function keyCursor(value: unknown): KeyCursor | undefined {
  const c = value as { v: unknown; id: unknown } | null;
  if (c && (typeof c.v === "string" || typeof c.v === "number") && typeof c.id === "string") return { v: c.v, id: c.id };
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
    const total = await orgRequestTotal(app.db, orgId);
    const data = rows.map((k) => ({ ...k, usage_pct: total > 0 ? Math.round((k.requests / total) * 10_000) / 100 : 0 }));
    ctx.body = { data, next_cursor: next ? encodeCursor(next) : null };
  },
});

export const getKey = getByIdRoute({ path: "/internal/api-keys/:id", id: keyId, noun: "api key", find: getApiKey, response: apiKeySchema });
