import { isRealCalendarDate } from "./input-guard.js";
import { z } from "zod";

/** Field schemas shared by the admin routes. */
export const displayName = z.string().trim().min(1, "must not be empty").max(200, "must be at most 200 characters");
export const tokenLimit = z
  .number({ error: "must be an integer" })
  .int("must be an integer")
  .min(0, "must be 0 or more")
  .max(Number.MAX_SAFE_INTEGER);

export function idOf(prefix: string) {
  return z
    .string({ error: `must be a ${prefix}_… id` })
    .regex(new RegExp(`^${prefix}_[0-9a-z]{26}$`), `must be a ${prefix}_… id`);
}

const RELATIVE_EXPIRY: Record<string, number> = { "30d": 30, "60d": 60, "90d": 90, "180d": 180, "1y": 365 };

/** `never`, a relative period (30d, 60d, 90d, 180d, 1y) or an ISO-8601 timestamp in the future. */
export const expiresAt = z.union([z.string(), z.null()]).transform((value, ctx) => {
  if (value === null || value === "never") return null;
  const days = RELATIVE_EXPIRY[value];
  if (days !== undefined) return new Date(Date.now() + days * 86_400_000);
  const ms = /^\d{4}-\d{2}-\d{2}T/.test(value) && isRealCalendarDate(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) {
    ctx.addIssue({ code: "custom", message: "must be never, 30d, 60d, 90d, 180d, 1y or an ISO-8601 timestamp" });
    return z.NEVER;
  }
  if (ms <= Date.now()) {
    ctx.addIssue({ code: "custom", message: "must be in the future" });
    return z.NEVER;
  }
  return new Date(ms);
});
