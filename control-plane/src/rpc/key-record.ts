import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  BudgetPeriod,
  KeyStatus,
  KeyUpsertSchema,
  McpAccessMode,
  ModelPriceSchema,
  QuotaLimitSchema,
  QuotaMetric,
  QuotaScope,
  SigningKeySchema,
  type KeyUpsert,
  type ModelPrice,
  type SigningKey,
} from "@tollgate/shared";
import type { KeySyncRecord, ModelPriceRecord, OwnerLimits, SigningKeyRecord } from "../repositories/change-log.js";

const STATUS: Record<string, KeyStatus> = {
  active: KeyStatus.ACTIVE,
  inactive: KeyStatus.INACTIVE,
  expired: KeyStatus.EXPIRED,
  revoked: KeyStatus.REVOKED,
};

const MCP_MODE: Record<string, McpAccessMode> = {
  allow_all: McpAccessMode.ALLOW_ALL,
  deny_all: McpAccessMode.DENY_ALL,
  allow_list: McpAccessMode.ALLOW_LIST,
  deny_list: McpAccessMode.DENY_LIST,
};

const BUDGET_PERIOD: Record<string, BudgetPeriod> = {
  total: BudgetPeriod.TOTAL,
  daily: BudgetPeriod.DAILY,
  monthly: BudgetPeriod.MONTHLY,
};

/** The user's and team's limits as QuotaLimits (a team's defaults are applied by gateways). */
function ownerLimits(
  userId: string,
  teamId: string | null,
  o: OwnerLimits | undefined,
): MessageInitShape<typeof QuotaLimitSchema>[] {
  if (!o) return [];
  const out: Array<{ scope: QuotaScope; subjectId: string; metric: QuotaMetric; limit: bigint }> = [];
  const add = (scope: QuotaScope, subjectId: string | null, metric: QuotaMetric, limit: number | null) => {
    if (subjectId && limit !== null) out.push({ scope, subjectId, metric, limit: BigInt(limit) });
  };
  add(QuotaScope.USER, userId, QuotaMetric.REQUESTS_PER_MINUTE, o.user_rpm_limit);
  add(QuotaScope.USER, userId, QuotaMetric.TOKENS_PER_MINUTE, o.user_tpm_limit);
  add(QuotaScope.USER, userId, QuotaMetric.TOKENS_PER_DAY, o.user_daily_token_limit);
  add(QuotaScope.TEAM, teamId, QuotaMetric.TOKENS_PER_MINUTE, o.team_tpm_limit);
  add(QuotaScope.TEAM, teamId, QuotaMetric.TOKENS_PER_DAY, o.team_daily_token_limit);
  return out;
}

/** Change-log payload → wire message. Payloads written before a field existed leave it at its default. */
export function toKeyUpsert(r: KeySyncRecord): KeyUpsert {
  const mcp = r.mcp;
  return create(KeyUpsertSchema, {
    id: r.id,
    keyHash: Buffer.from(r.key_hash, "hex"),
    keyPrefix: r.key_prefix,
    name: r.name,
    userId: r.user_id,
    teamId: r.team_id ?? "",
    status: STATUS[r.status] ?? KeyStatus.UNSPECIFIED,
    ...(r.expires_at ? { expiresAt: timestampFromDate(new Date(r.expires_at)) } : {}),
    createdAt: timestampFromDate(new Date(r.created_at)),
    ...(r.rpm_limit != null ? { rpmLimit: BigInt(r.rpm_limit) } : {}),
    ...(r.tpm_limit != null ? { tpmLimit: BigInt(r.tpm_limit) } : {}),
    ...(r.budget_usd != null ? { budgetUsd: r.budget_usd } : {}),
    ...(r.tokens_per_day_limit != null ? { tokensPerDayLimit: BigInt(r.tokens_per_day_limit) } : {}),
    ...(r.max_concurrent_requests != null ? { maxConcurrentRequests: BigInt(r.max_concurrent_requests) } : {}),
    budgetPeriod: BUDGET_PERIOD[r.budget_period ?? "total"] ?? BudgetPeriod.TOTAL,
    ownerLimits: ownerLimits(r.user_id, r.team_id, r.owner_limits),
    budgetAlertThresholds: r.budget_alert_thresholds ?? [],
    allowedProviders: r.allowed_providers ?? [],
    allowedModels: r.allowed_models ?? [],
    ipAllowlist: r.ip_allowlist ?? [],
    metadataJson: r.metadata && Object.keys(r.metadata).length > 0 ? JSON.stringify(r.metadata) : "",
    ...(mcp
      ? {
          mcp: {
            enabled: mcp.enabled,
            accessMode: MCP_MODE[mcp.access_mode] ?? McpAccessMode.UNSPECIFIED,
            servers: mcp.servers,
            tools: Object.fromEntries(Object.entries(mcp.tools).map(([server, tools]) => [server, { tools }])),
          },
        }
      : {}),
    ...(r.previous_key_hash && r.previous_key_expires_at
      ? {
          previousKeyHash: Buffer.from(r.previous_key_hash, "hex"),
          previousKeyExpiresAt: timestampFromDate(new Date(r.previous_key_expires_at)),
        }
      : {}),
  });
}

export function toSigningKey(r: SigningKeyRecord): SigningKey {
  return create(SigningKeySchema, {
    id: r.id,
    publicKey: Buffer.from(r.public_key, "hex"),
    createdAt: timestampFromDate(new Date(r.created_at)),
  });
}

export function toModelPrice(r: ModelPriceRecord): ModelPrice {
  return create(ModelPriceSchema, {
    provider: r.provider,
    model: r.model,
    inputUsdPerMtok: r.input_usd_per_mtok,
    outputUsdPerMtok: r.output_usd_per_mtok,
    ...(r.cache_read_usd_per_mtok !== null ? { cacheReadUsdPerMtok: r.cache_read_usd_per_mtok } : {}),
    ...(r.cache_write_usd_per_mtok !== null ? { cacheWriteUsdPerMtok: r.cache_write_usd_per_mtok } : {}),
    source: r.source,
  });
}
