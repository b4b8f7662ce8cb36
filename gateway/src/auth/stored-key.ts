/**
 * A key as the control plane syncs it to the gateway, and the policy it carries. The store
 * keeps it, the key index compiles it, quotas and MCP read its policy.
 */

/** A key's MCP settings as synced (enforced by a later release). */
export interface StoredMcpSettings {
  enabled: boolean;
  /** McpAccessMode enum value. */
  accessMode: number;
  servers: string[];
  /** Allowed tools per server name, servers sorted. */
  tools: Record<string, string[]>;
}

/** A limit of the key's user or team (QuotaScope / QuotaMetric enum values). */
export interface OwnerLimit {
  scope: number;
  subjectId: string;
  metric: number;
  limit: number;
}

/** A key's limits and scopes as synced; empty lists mean no restriction. */
export interface KeyPolicy {
  rpmLimit: number | null;
  tpmLimit: number | null;
  tokensPerDayLimit: number | null;
  maxConcurrentRequests: number | null;
  budgetUsd: number | null;
  /** BudgetPeriod enum value. */
  budgetPeriod: number;
  budgetAlertThresholds: number[];
  ownerLimits: OwnerLimit[];
  allowedProviders: string[];
  /** Exact names or globs with `*` and `?`. */
  allowedModels: string[];
  /** IPv4/IPv6 addresses and CIDRs. */
  ipAllowlist: string[];
  mcp: StoredMcpSettings | null;
}

export const EMPTY_POLICY: Readonly<KeyPolicy> = Object.freeze({
  rpmLimit: null,
  tpmLimit: null,
  tokensPerDayLimit: null,
  maxConcurrentRequests: null,
  budgetUsd: null,
  budgetPeriod: 1,
  budgetAlertThresholds: [],
  ownerLimits: [],
  allowedProviders: [],
  allowedModels: [],
  ipAllowlist: [],
  mcp: null,
});

/** A cached key as the gateway stores it: never the secret, only its SHA-256. */
export interface StoredKey {
  id: string;
  keyHash: Buffer;
  prefix: string;
  name: string;
  userId: string;
  teamId: string;
  /** KeyStatus enum value. */
  status: number;
  expiresAtMs: number | null;
  createdAtMs: number;
  policy: KeyPolicy;
  /** The admin's JSON object, as synced; "" when none. */
  metadataJson: string;
  /** During a rotation grace period: the previous secret's SHA-256 and when it stops working. */
  previousKeyHash: Buffer | null;
  previousKeyExpiresAtMs: number | null;
}
