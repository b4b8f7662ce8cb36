import { z } from "zod";
import { pageQuery } from "../../http/pagination.js";
import type { RouteDef } from "../../http/route.js";
import { idOf } from "../../http/schemas.js";
import { createKeySchema } from "./key-schemas.js";

/** Largest bulk import in one call; it lands as one transaction and a few large pushes. */
const MAX_BULK_KEYS = 10_000;
const MAX_GRACE_SECONDS = 7 * 86_400;
const MAX_EPHEMERAL_TTL_SECONDS = 86_400;

export const keyId = idOf("ak");

/** The route of an action on one key, POST /internal/api-keys/:id/<action>, whose body may be empty. */
export function keyAction<B>(
  action: string,
  summary: string,
  body: z.ZodType<B>,
): Omit<RouteDef<{ id: string }, undefined, B>, "handler"> {
  return {
    method: "post",
    path: `/internal/api-keys/:id/${action}`,
    summary,
    params: { id: keyId },
    body,
    bodyKind: "optional",
  };
}

export const bulkCreate = z.strictObject({
  keys: z
    .array(createKeySchema)
    .min(1, "must hold at least one key")
    .max(MAX_BULK_KEYS, `must hold at most ${MAX_BULK_KEYS} keys`),
});

export const listQuery = pageQuery(500).extend({
  user_id: idOf("user").optional(),
  search: z.string().trim().min(1).max(200).optional(),
  status: z.enum(["active", "inactive", "expired", "revoked"]).optional(),
  sort: z.enum(["name", "owner", "status", "created", "requests"]).default("created"),
  order: z.enum(["asc", "desc"]).default("asc"),
});

export const rotateBody = z.strictObject({
  grace_seconds: z
    .number()
    .int("must be a whole number of seconds")
    .min(0)
    .max(MAX_GRACE_SECONDS, `must be at most ${MAX_GRACE_SECONDS} (7 days)`)
    .optional(),
});

export const ephemeralBody = z.strictObject({
  ttl_seconds: z
    .number({ error: "must be a number of seconds" })
    .int("must be a whole number of seconds")
    .min(60, "must be at least 60")
    .max(MAX_EPHEMERAL_TTL_SECONDS, `must be at most ${MAX_EPHEMERAL_TTL_SECONDS} (24 hours)`)
    .default(3600),
});

export const emptyBody = z.strictObject({});
