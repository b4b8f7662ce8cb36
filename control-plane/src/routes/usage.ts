import { isRealCalendarDate } from "../http/input-guard.js";
import { sql } from "kysely";
import { z } from "zod";
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
      ctx.body = {
        from,
        to,
        group_by: q.group_by,
        data: rows.map((r) => ({
          [`${q.group_by === "day" ? "day" : `${q.group_by}_id`}`]: r.group,
          requests: Number(r.requests),
          input_tokens: Number(r.input_tokens),
          output_tokens: Number(r.output_tokens),
          cost_usd: Number(r.cost_micro_usd) / 1e6,
        })),
      };
    },
  }),
]);
