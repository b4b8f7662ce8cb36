import type { ColumnType, Insertable, Selectable } from "kysely";

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

export interface Database {
  orgs: OrgsTable;
  teams: TeamsTable;
  users: UsersTable;
  api_keys: ApiKeysTable;
  gateway_tokens: GatewayTokensTable;
  gateways: GatewaysTable;
  change_log: ChangeLogTable;
  audit_log: AuditLogTable;
}

export type TeamRow = Selectable<TeamsTable>;
export type UserRow = Selectable<UsersTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type NewApiKeyRow = Insertable<ApiKeysTable>;
