import type { ColumnType, Selectable } from "kysely";

/** Kysely table types. Repositories map rows to domain objects; rows never leave them. */
type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;
/** int8 arrives as a string from pg and a number from PGlite; repositories use Number(). */
type Int8 = ColumnType<string | number, number | bigint, number | bigint>;
type Int8WithDefault = ColumnType<string | number, number | bigint | undefined, number | bigint>;

export interface OrgsTable {
  id: string;
  name: string;
  revision: Int8WithDefault;
  created_at: CreatedAt;
}

export interface TeamsTable {
  id: string;
  org_id: string;
  name: string;
  tpm_limit: Int8 | null;
  daily_token_limit: Int8 | null;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface UsersTable {
  id: string;
  org_id: string;
  external_id: string;
  team_id: string | null;
  /** `admin` (the whole organization) or `member` (their own keys). */
  role: ColumnType<"admin" | "member", "admin" | "member" | undefined, "admin" | "member">;
  rpm_limit: Int8 | null;
  tpm_limit: Int8 | null;
  daily_token_limit: Int8 | null;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface ApiKeysTable {
  id: string;
  org_id: string;
  user_id: string;
  name: string;
  key_hash: Uint8Array;
  key_prefix: string;
  status: string;
  expires_at: Date | null;
  created_at: CreatedAt;
  updated_at: Timestamp;
  rpm_limit: Int8 | null;
  tpm_limit: Int8 | null;
  budget_usd: number | null;
  budget_alert_thresholds: Json<number[]>;
  allowed_providers: Json<string[]>;
  allowed_models: Json<string[]>;
  ip_allowlist: Json<string[]>;
  metadata: Json<Record<string, unknown>>;
  mcp: Json<McpSettingsJson>;
  previous_key_hash: Uint8Array | null;
  previous_key_expires_at: Date | null;
  last_used_at: Date | null;
  request_count: Int8 | null;
  tokens_per_day_limit: Int8 | null;
  budget_period: ColumnType<string, string | undefined, string>;
  max_concurrent_requests: Int8 | null;
  input_tokens: Int8WithDefault;
  output_tokens: Int8WithDefault;
  cost_micro_usd: Int8WithDefault;
}

export interface McpSettingsJson {
  enabled: boolean;
  access_mode: "allow_all" | "deny_all" | "allow_list" | "deny_list";
  servers: string[];
  tools: Record<string, string[]>;
}

/** jsonb: written as a JSON string, read back parsed. */
type Json<T> = ColumnType<T, string | undefined, string>;

export interface SigningKeysTable {
  id: string;
  org_id: string;
  public_key: Uint8Array;
  private_key_sealed: Uint8Array;
  created_at: CreatedAt;
}

export interface IdempotencyRecordsTable {
  org_id: string;
  scope: string;
  key_hash: Uint8Array;
  target_id: string;
  response: ColumnType<unknown, string, string>;
  created_at: CreatedAt;
}

export interface GatewayTokensTable {
  id: string;
  org_id: string;
  name: string;
  token_hash: Uint8Array;
  token_prefix: string;
  created_at: CreatedAt;
  revoked_at: Date | null;
}

export interface GatewaysTable {
  id: string;
  org_id: string;
  token_id: string;
  name: string;
  version: string;
  connected: boolean;
  remote_address: string | null;
  applied_revision: Int8;
  last_error: string | null;
  connected_at: Date | null;
  last_seen_at: Date | null;
  created_at: CreatedAt;
}

export interface ChangeLogTable {
  org_id: string;
  revision: Int8;
  kind: string;
  resource_id: string;
  payload: ColumnType<unknown, string, string>;
  committed_at: CreatedAt;
}

export interface AuditLogTable {
  id: string;
  org_id: string;
  actor: string;
  action: string;
  target_type: string;
  target_id: string;
  before: ColumnType<unknown, string | null, never>;
  after: ColumnType<unknown, string | null, never>;
  request_id: string | null;
  at: CreatedAt;
}

export interface QuotaCountersTable {
  org_id: string;
  counter: string;
  window_key: string;
  kind: string;
  capacity: Int8;
  window_ends_at: Date | null;
}

export interface QuotaHoldingsTable {
  org_id: string;
  counter: string;
  window_key: string;
  gateway_id: string;
  consumed: Int8;
  held: Int8;
  held_until: Date;
}

export interface UsageReportsTable {
  gateway_id: string;
  seq: Int8;
  org_id: string;
  received_at: CreatedAt;
}

export interface UsageDailyTable {
  org_id: string;
  day: string;
  key_id: string;
  user_id: string;
  team_id: string | null;
  requests: Int8WithDefault;
  input_tokens: Int8WithDefault;
  output_tokens: Int8WithDefault;
  cost_micro_usd: Int8WithDefault;
}

export interface BudgetAlertsTable {
  id: string;
  org_id: string;
  key_id: string;
  period: string;
  threshold: number;
  payload: ColumnType<unknown, string, never>;
  fired_at: CreatedAt;
  delivered_at: Date | null;
  attempts: ColumnType<number, number | undefined, number>;
  next_attempt_at: ColumnType<Date, Date | string | undefined, Date | string>;
  last_error: string | null;
}

/** A model's price in USD per million tokens; a null cache price means the input rate. */
export interface PriceValues {
  input_usd_per_mtok: number;
  output_usd_per_mtok: number;
  cache_read_usd_per_mtok: number | null;
  cache_write_usd_per_mtok: number | null;
}

export interface ModelPricesTable extends PriceValues {
  org_id: string;
  provider: string;
  model: string;
  source: "default" | "override";
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface Database {
  orgs: OrgsTable;
  teams: TeamsTable;
  users: UsersTable;
  api_keys: ApiKeysTable;
  gateway_tokens: GatewayTokensTable;
  gateways: GatewaysTable;
  change_log: ChangeLogTable;
  audit_log: AuditLogTable;
  signing_keys: SigningKeysTable;
  idempotency_records: IdempotencyRecordsTable;
  quota_counters: QuotaCountersTable;
  quota_holdings: QuotaHoldingsTable;
  usage_reports: UsageReportsTable;
  usage_daily: UsageDailyTable;
  budget_alerts: BudgetAlertsTable;
  model_prices: ModelPricesTable;
  mcp_servers: McpServersTable;
}

export type TeamRow = Selectable<TeamsTable>;
export type UserRow = Selectable<UsersTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
/** An MCP server of an organization; credential_ref names a secret, never holds one. */
export interface McpServersTable {
  id: string;
  org_id: string;
  name: string;
  url: string;
  description: ColumnType<string, string | undefined, string>;
  auth_type: ColumnType<string, string | undefined, string>;
  auth_header: string | null;
  credential_ref: string | null;
  created_at: CreatedAt;
  updated_at: Timestamp;
}
