import { z } from "zod";
import type { ApiKey } from "../repositories/api-keys.js";
import type { AuditEntry } from "../repositories/audit-log.js";
import type { GatewayStatus } from "../repositories/gateways.js";
import type { GatewayToken } from "../repositories/gateway-tokens.js";
import type { ModelPrice } from "../repositories/model-prices.js";
import type { Org } from "../repositories/orgs.js";
import type { Team } from "../repositories/teams.js";
import type { User } from "../repositories/users.js";

/**
 * What the admin API answers, for the OpenAPI document and the dashboard's
 * generated types. Never validated at run time; the `Covers` checks below make
 * the compiler refuse a repository type whose fields stop matching its schema.
 */
const iso = z.string().meta({ format: "date-time" });
const nullableInt = z.number().int().nullable();

export const orgSchema = z
  .object({ id: z.string(), name: z.string(), revision: z.number().int(), is_default: z.boolean(), created_at: iso })
  .meta({ id: "Org" });

export const teamSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    tpm_limit: nullableInt,
    daily_token_limit: nullableInt,
    created_at: iso,
    updated_at: iso,
  })
  .meta({ id: "Team" });

export const userSchema = z
  .object({
    id: z.string(),
    external_id: z.string(),
    team_id: z.string().nullable(),
    rpm_limit: nullableInt,
    tpm_limit: nullableInt,
    daily_token_limit: nullableInt,
    created_at: iso,
    updated_at: iso,
  })
  .meta({ id: "User" });

const keyStatus = z.enum(["active", "inactive", "expired", "revoked"]);

export const apiKeySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    key_prefix: z
      .string()
      .meta({ description: "The first characters of the key: enough to recognise it, never enough to use it" }),
    user_id: z.string(),
    owner: z.string().nullable().meta({ description: "The owner's external id (e.g. an email)" }),
    status: keyStatus,
    expires_at: iso.nullable(),
    rpm_limit: nullableInt,
    tpm_limit: nullableInt,
    tokens_per_day_limit: nullableInt,
    max_concurrent_requests: nullableInt,
    budget_usd: z.number().nullable(),
    budget_period: z.enum(["total", "daily", "monthly"]),
    budget_alert_thresholds: z.array(z.number().int()),
    allowed_providers: z.array(z.string()),
    allowed_models: z.array(z.string()),
    ip_allowlist: z.array(z.string()),
    metadata: z.record(z.string(), z.unknown()),
    mcp_enabled: z.boolean(),
    mcp_access_mode: z.enum(["allow_all", "deny_all", "allow_list", "deny_list"]),
    mcp_servers: z.array(z.string()),
    mcp_tools: z.record(z.string(), z.array(z.string())),
    previous_key_expires_at: iso.nullable(),
    last_used_at: iso.nullable(),
    requests: z.number().int(),
    input_tokens: z.number().int(),
    output_tokens: z.number().int(),
    spend_usd: z.number(),
    created_at: iso,
    updated_at: iso,
  })
  .meta({ id: "ApiKey" });

/** Which online gateways applied the change in time (only with ?wait_for_gateways). */
export const syncReceiptSchema = z
  .object({
    revision: z.number().int(),
    complete: z.boolean(),
    waited_ms: z.number(),
    confirmed: z.array(z.object({ id: z.string(), name: z.string(), applied_revision: z.number().int() })),
    pending: z.array(z.object({ id: z.string(), name: z.string(), applied_revision: z.number().int() })),
  })
  .meta({ id: "SyncReceipt" });

export const changedKeySchema = apiKeySchema
  .extend({ sync: syncReceiptSchema.optional() })
  .meta({ id: "ChangedApiKey" });

export const revealedKeySchema = changedKeySchema
  .extend({ key: z.string().meta({ description: "The full secret: shown in this response only" }) })
  .meta({ id: "RevealedApiKey" });

export const listedKeySchema = apiKeySchema
  .extend({ usage_pct: z.number().meta({ description: "The key's share of the organization's requests, in percent" }) })
  .meta({ id: "ListedApiKey" });

export const gatewayTokenSchema = z
  .object({ id: z.string(), name: z.string(), token_prefix: z.string(), created_at: iso, revoked_at: iso.nullable() })
  .meta({ id: "GatewayToken" });

export const gatewaySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    org_id: z.string(),
    version: z.string(),
    connected: z.boolean(),
    remote_address: z.string().nullable(),
    applied_revision: z.number().int(),
    current_revision: z.number().int(),
    lag: z.number().int(),
    last_error: z.string().nullable(),
    connected_at: iso.nullable(),
    last_seen_at: iso.nullable(),
    created_at: iso,
  })
  .meta({ id: "Gateway" });

export const auditEntrySchema = z
  .object({
    id: z.string(),
    actor: z.string(),
    action: z.string(),
    target_type: z.string(),
    target_id: z.string(),
    before: z.unknown(),
    after: z.unknown(),
    request_id: z.string().nullable(),
    at: iso.nullable(),
  })
  .meta({ id: "AuditEntry" });

const priceValues = {
  input_usd_per_mtok: z.number(),
  output_usd_per_mtok: z.number(),
  cache_read_usd_per_mtok: z.number().nullable(),
  cache_write_usd_per_mtok: z.number().nullable(),
};

export const modelPriceSchema = z
  .object({
    provider: z.string(),
    model: z.string(),
    ...priceValues,
    source: z.enum(["default", "override"]),
    updated_at: iso,
    default: z
      .object(priceValues)
      .nullable()
      .meta({ description: "The bundled dataset's price this row falls back to, if any" }),
  })
  .meta({ id: "ModelPrice" });

export const usageRowSchema = z
  .object({
    day: z.string().optional(),
    key_id: z.string().nullable().optional(),
    user_id: z.string().nullable().optional(),
    team_id: z.string().nullable().optional(),
    name: z.string().nullable().optional().meta({
      description:
        "With group_by key, user or team: the key's name, the user's external id or the team's name; null when it no longer exists (or for usage without a team)",
    }),
    requests: z.number().int(),
    input_tokens: z.number().int(),
    output_tokens: z.number().int(),
    cost_usd: z.number(),
  })
  .meta({ id: "UsageRow" });

export const usageSchema = z
  .object({
    from: z.string(),
    to: z.string(),
    group_by: z.enum(["key", "user", "team", "day"]),
    data: z.array(usageRowSchema),
  })
  .meta({ id: "Usage" });

export const deletedSchema = z.object({ id: z.string(), deleted: z.literal(true) }).meta({ id: "Deleted" });

/** The list envelope every list endpoint answers with. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({
    data: z.array(item),
    next_cursor: z.string().nullable().meta({ description: "Pass as ?cursor= for the next page; null on the last" }),
  });
}

/** Compile-time only: every field of the repository type is described with a compatible type. */
type Covers<Schema extends z.ZodType, Actual> = Actual extends z.output<Schema> ? true : never;
export const schemasCoverRepositoryTypes: [
  Covers<typeof orgSchema, Org>,
  Covers<typeof teamSchema, Team>,
  Covers<typeof userSchema, User>,
  Covers<typeof apiKeySchema, ApiKey>,
  Covers<typeof gatewayTokenSchema, GatewayToken>,
  Covers<typeof gatewaySchema, GatewayStatus>,
  Covers<typeof auditEntrySchema, AuditEntry>,
  Covers<typeof modelPriceSchema, ModelPrice & { default: null }>,
] = [true, true, true, true, true, true, true, true];
