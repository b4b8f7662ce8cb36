import { AppError } from "@tollgate/shared";
import type { z } from "zod";
import type { ResponseDoc } from "../http/route.js";
import type { Db } from "../db/database.js";
import { defineRoute } from "../http/route.js";

/** The row found by `id`, or the 404 naming it ("team tm_… not found"). */
export function orNotFound<T>(row: T | null | undefined, noun: string, id: string): T {
  if (row === undefined || row === null) throw new AppError("not_found", `${noun} ${id} not found`, { field: "id" });
  return row;
}

/** `GET <path>/:id` of an organization's resource: the row, or a 404 naming it. */
export function getByIdRoute<T>(o: {
  path: string;
  id: z.ZodType<string>;
  /** How the 404 names the resource: "team", "api key". */
  noun: string;
  find(db: Db, orgId: string, id: string): Promise<T | undefined>;
  /** The row's schema, for the OpenAPI document. */
  response?: z.ZodType;
  /** The operation's summary in the OpenAPI document. */
  summary?: string;
}) {
  return defineRoute({
    method: "get",
    path: o.path,
    ...(o.summary !== undefined ? { summary: o.summary } : {}),
    params: { id: o.id },
    ...(o.response ? { response: { schema: o.response } satisfies ResponseDoc } : {}),
    async handler({ ctx, orgId, params }, app) {
      const { id } = params();
      ctx.body = orNotFound(await o.find(app.db, orgId, id), o.noun, id);
    },
  });
}
