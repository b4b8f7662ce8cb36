import { isRealCalendarDate } from "../http/input-guard.js";
import { sql } from "kysely";
import { z } from "zod";
import type { Db } from "../db/database.js";
import { defineRoute, routeGroup } from "../http/route.js";
import { usageSchema } from "./response-schemas.js";
import { idOf } from "../http/schemas.js";

const day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, "must be a UTC day, YYYY-MM-DD")
  .refine(isRealCalendarDate, "must be a day that exists, YYYY-MM-DD");

const query = z
  .strictObject({
    group_by: z.enum(["key", "user", "team", "day"], { error: "must be key, user, team or day" }).default("key"),
    from: day.optional(),
    to: day.optional(),
    key_id: idOf("ak").optional(),
    user_id: idOf("user").optional(),
    team_id: idOf("team").optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .refine((q) => !q.from || !q.to || q.from <= q.to, { message: "from must not be after to", path: ["from"] });

const COLUMN = { key: "key_id", user: "user_id", team: "team_id", day: "day" } as const;

/** Where a group's display name lives: the key's name, the user's external id, the team's name. */
const NAME_SOURCE = {
  key: { table: "api_keys", column: "name" },
  user: { table: "users", column: "external_id" },
  team: { table: "teams", column: "name" },
} as const;

/** The display names of `ids` in this organization (one query); ids that no longer exist are absent. */
async function namesOf(
  db: Db,
  orgId: string,
  groupBy: keyof typeof NAME_SOURCE,
  ids: string[],
): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const { table, column } = NAME_SOURCE[groupBy];
  const rows = await db
    .selectFrom(table)
    .select(["id", sql<string>`${sql.ref(column)}`.as("name")])
    .where("org_id", "=", orgId)
    .where("id", "in", ids)
    .execute();
  return new Map(rows.map((r) => [r.id, r.name]));
}

/**
 * Usage as the gateways reported it (each report counted once), summed per
 * key, user, team or UTC day over a range of days (default: the last 30).
 */
export const usageRoutes = routeGroup("usage", [
  defineRoute({
    method: "get",
    path: "/internal/usage",
    response: { schema: usageSchema },
    query: query,
    async handler({ ctx, query }, app) {
      const q = query();
      const today = new Date().toISOString().slice(0, 10);
      const to = q.to ?? today;
      const from = q.from ?? new Date(Date.parse(`${to}T00:00:00Z`) - 29 * 86_400_000).toISOString().slice(0, 10);
      const column = COLUMN[q.group_by];
      let builder = app.db
        .selectFrom("usage_daily")
        .select([
          sql<string | null>`${sql.ref(column)}`.as("group"),
          sql<string>`sum(requests)`.as("requests"),
          sql<string>`sum(input_tokens)`.as("input_tokens"),
          sql<string>`sum(output_tokens)`.as("output_tokens"),
          sql<string>`sum(cost_micro_usd)`.as("cost_micro_usd"),
        ])
        .where("org_id", "=", ctx.state.orgId)
        .where("day", ">=", from)
        .where("day", "<=", to);
      if (q.key_id) builder = builder.where("key_id", "=", q.key_id);
      if (q.user_id) builder = builder.where("user_id", "=", q.user_id);
      if (q.team_id) builder = builder.where("team_id", "=", q.team_id);
      const rows = await builder
        .groupBy(sql.ref(column))
        .orderBy(
          q.group_by === "day" ? sql.ref("day") : sql`sum(cost_micro_usd)`,
          q.group_by === "day" ? "asc" : "desc",
        )
        .limit(q.limit)
        .execute();
      const names =
        q.group_by === "day"
          ? null
          : await namesOf(
              app.db,
              ctx.state.orgId,
              q.group_by,
              rows.flatMap((r) => (r.group ? [r.group] : [])),
            );
      ctx.body = {
        from,
        to,
        group_by: q.group_by,
        data: rows.map((r) => ({
          [`${q.group_by === "day" ? "day" : `${q.group_by}_id`}`]: r.group,
          ...(names ? { name: (r.group && names.get(r.group)) ?? null } : {}),
          requests: Number(r.requests),
          input_tokens: Number(r.input_tokens),
          output_tokens: Number(r.output_tokens),
          cost_usd: Number(r.cost_micro_usd) / 1e6,
        })),
      };
    },
  }),
]);
