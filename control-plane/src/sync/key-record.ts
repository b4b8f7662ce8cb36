import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  KeyStatus,
  KeyUpsertSchema,
  McpAccessMode,
  ModelPriceSchema,
  SigningKeySchema,
  type KeyUpsert,
  type ModelPrice,
  type SigningKey,
} from "@tollgate/shared";
import type { KeySyncRecord, ModelPriceRecord, SigningKeyRecord } from "../repositories/change-log.js";

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
