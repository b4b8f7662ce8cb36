import type { ApiKeyRow, McpSettingsJson } from "../db/schema.js";
import { toIso, toNullableNumber } from "./rows.js";

export type KeyStatusName = "active" | "inactive" | "expired" | "revoked";
export type McpAccessMode = McpSettingsJson["access_mode"];

/** What an admin can set on a key besides its name and owner. */
export interface ApiKeySettings {
  expires_at: Date | null;
  rpm_limit: number | null;
  tpm_limit: number | null;
  tokens_per_day_limit: number | null;
  max_concurrent_requests: number | null;
  budget_usd: number | null;
  /** When the budget starts over: never (total), every UTC day or every UTC month. */
  budget_period: "total" | "daily" | "monthly";
  budget_alert_thresholds: number[];
  allowed_providers: string[];
  allowed_models: string[];
  ip_allowlist: string[];
  metadata: Record<string, unknown>;
  mcp_enabled: boolean;
  mcp_access_mode: McpAccessMode;
  mcp_servers: string[];
  mcp_tools: Record<string, string[]>;
}

export const DEFAULT_KEY_SETTINGS: ApiKeySettings = {
  expires_at: null,
  rpm_limit: null,
  tpm_limit: null,
  tokens_per_day_limit: null,
  max_concurrent_requests: null,
  budget_usd: null,
  budget_period: "total",
  budget_alert_thresholds: [],
  allowed_providers: [],
  allowed_models: [],
  ip_allowlist: [],
  metadata: {},
  mcp_enabled: false,
  mcp_access_mode: "allow_all",
  mcp_servers: [],
  mcp_tools: {},
};

/** Key metadata as admins see it: never the key, never its hash. */
export interface ApiKey extends Omit<ApiKeySettings, "expires_at"> {
  id: string;
  name: string;
  key_prefix: string;
  user_id: string;
  /** The owner's external id (e.g. an email). */
  owner: string | null;
  status: KeyStatusName;
  expires_at: string | null;
  previous_key_expires_at: string | null;
  last_used_at: string | null;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  /** What the key has cost so far, over its whole life. */
  spend_usd: number;
  created_at: string;
  updated_at: string;
}

export type KeyRowWithOwner = ApiKeyRow & { owner?: string | null };

/** `expired` is derived from the clock, so it holds the second a key expires. */
export function effectiveStatus(stored: string, expiresAt: Date | null, now: Date = new Date()): KeyStatusName {
  if (stored === "active" && expiresAt && expiresAt.getTime() <= now.getTime()) return "expired";
  return stored as KeyStatusName;
}

/** An api_keys row (with its owner, when joined) as admins see it. */
export function toApiKey(r: KeyRowWithOwner): ApiKey {
  const mcp = r.mcp;
  return {
    id: r.id,
    name: r.name,
    key_prefix: r.key_prefix,
    user_id: r.user_id,
    owner: r.owner ?? null,
    status: effectiveStatus(r.status, r.expires_at),
    expires_at: toIso(r.expires_at),
    rpm_limit: toNullableNumber(r.rpm_limit),
    tpm_limit: toNullableNumber(r.tpm_limit),
    tokens_per_day_limit: toNullableNumber(r.tokens_per_day_limit),
    max_concurrent_requests: toNullableNumber(r.max_concurrent_requests),
    budget_usd: r.budget_usd,
    budget_period: r.budget_period as ApiKeySettings["budget_period"],
    budget_alert_thresholds: r.budget_alert_thresholds,
    allowed_providers: r.allowed_providers,
    allowed_models: r.allowed_models,
    ip_allowlist: r.ip_allowlist,
    metadata: r.metadata,
    mcp_enabled: mcp.enabled,
    mcp_access_mode: mcp.access_mode,
    mcp_servers: mcp.servers,
    mcp_tools: mcp.tools,
    // The old secret is kept after its grace ended (gateways then know it as rotated, not a guess); it no longer works.
    previous_key_expires_at:
      r.previous_key_expires_at && new Date(r.previous_key_expires_at).getTime() > Date.now()
        ? toIso(r.previous_key_expires_at)
        : null,
    last_used_at: toIso(r.last_used_at),
    requests: Number(r.request_count ?? 0),
    input_tokens: Number(r.input_tokens ?? 0),
    output_tokens: Number(r.output_tokens ?? 0),
    spend_usd: Number(r.cost_micro_usd ?? 0) / 1e6,
    created_at: toIso(r.created_at)!,
    updated_at: toIso(r.updated_at)!,
  };
}

/** Column values for the settings, as Kysely writes them. */
export function settingsColumns(s: Partial<ApiKeySettings>) {
  const out: Record<string, unknown> = {};
  if (s.expires_at !== undefined) out.expires_at = s.expires_at;
  if (s.rpm_limit !== undefined) out.rpm_limit = s.rpm_limit;
  if (s.tpm_limit !== undefined) out.tpm_limit = s.tpm_limit;
  if (s.budget_usd !== undefined) out.budget_usd = s.budget_usd;
  if (s.tokens_per_day_limit !== undefined) out.tokens_per_day_limit = s.tokens_per_day_limit;
  if (s.max_concurrent_requests !== undefined) out.max_concurrent_requests = s.max_concurrent_requests;
  if (s.budget_period !== undefined) out.budget_period = s.budget_period;
  for (const k of [
    "budget_alert_thresholds",
    "allowed_providers",
    "allowed_models",
    "ip_allowlist",
    "metadata",
  ] as const) {
    if (s[k] !== undefined) out[k] = JSON.stringify(s[k]);
  }
  return out;
}

/** The mcp JSON column. */
export function mcpJson(
  s: Pick<ApiKeySettings, "mcp_enabled" | "mcp_access_mode" | "mcp_servers" | "mcp_tools">,
): string {
  return JSON.stringify({
    enabled: s.mcp_enabled,
    access_mode: s.mcp_access_mode,
    servers: s.mcp_servers,
    tools: s.mcp_tools,
  });
}
