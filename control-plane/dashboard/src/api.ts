/**
 * The dashboard's only way to the server: the public /internal admin API,
 * authenticated by the session cookie, every unsafe call carrying the CSRF token.
 */
export interface SessionActor {
  kind: "master" | "admin_token" | "user";
  id: string | null;
  role: "admin" | "read_only" | "member";
  org_id: string | null;
  email?: string;
}

export interface SessionInfo {
  session: { id: string; expires_at: string; idle_expires_at: string; actor: SessionActor };
  csrf_token: string;
}

export type KeyStatus = "active" | "inactive" | "expired" | "revoked";

export interface ApiKey {
  id: string;
  name: string;
  key_prefix: string;
  user_id: string;
  owner: string | null;
  status: KeyStatus;
  expires_at: string | null;
  last_used_at: string | null;
  created_at: string;
  requests: number;
  usage_pct?: number;
  rpm_limit: number | null;
  tpm_limit: number | null;
  budget_usd: number | null;
  budget_alert_thresholds: number[];
  allowed_providers: string[];
  allowed_models: string[];
  ip_allowlist: string[];
  metadata: Record<string, unknown>;
  mcp_enabled: boolean;
  mcp_access_mode: "allow_all" | "deny_all" | "allow_list" | "deny_list";
  mcp_servers: string[];
  mcp_tools: Record<string, string[]>;
  spend_usd: number;
}

export interface Revealed extends ApiKey {
  key: string;
}

export interface Team {
  id: string;
  name: string;
  tpm_limit: number | null;
  daily_token_limit: number | null;
  created_at: string;
}

export interface User {
  id: string;
  external_id: string;
  team_id: string | null;
  rpm_limit: number | null;
  tpm_limit: number | null;
  daily_token_limit: number | null;
  created_at: string;
}

export interface Gateway {
  id: string;
  name: string;
  version: string | null;
  connected: boolean;
  applied_revision: number;
  current_revision: number;
  lag: number;
  last_error: string | null;
  last_seen_at: string | null;
}

export interface GatewayToken {
  id: string;
  name: string;
  token_prefix: string;
  created_at: string;
  revoked_at: string | null;
}

export interface AuditEntry {
  id: string;
  actor: string;
  action: string;
  target_type: string;
  target_id: string;
  at: string | null;
  after: unknown;
}

export interface UsageRow {
  day?: string;
  key_id?: string;
  user_id?: string;
  team_id?: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

export interface ModelPrice {
  provider: string;
  model: string;
  input_usd_per_mtok: number;
  output_usd_per_mtok: number;
  cache_read_usd_per_mtok: number | null;
  cache_write_usd_per_mtok: number | null;
  source: "default" | "override";
  updated_at: string;
}

export interface Org {
  id: string;
  name: string;
}

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/** An API error as the admin API reports it: a stable code, a message, maybe the field at fault. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

let csrfToken: string | undefined;
let organization: string | undefined;

/** The organization every call acts on (the master key may pick any); undefined = the default one. */
export function setOrganization(id: string | undefined): void {
  organization = id;
}
let onSessionLost: () => void = () => {};

export function setCsrfToken(token: string | undefined): void {
  csrfToken = token;
}

/** Called when the server says the session is gone, so the app can show the sign-in page. */
export function setSessionLostHandler(handler: () => void): void {
  onSessionLost = handler;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["x-csrf-token"] = csrfToken;
  if (organization && !path.startsWith("/internal/sessions")) headers["tollgate-organization"] = organization;
  const res = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    throw new ApiError(res.status, "invalid_response", `the server answered ${res.status} with a body that is not JSON`);
  }
  if (!res.ok) {
    const e = (parsed as { error?: { code?: string; message?: string; field?: string } })?.error ?? {};
    const err = new ApiError(res.status, e.code ?? "error", e.message ?? `request failed with ${res.status}`, e.field);
    if (res.status === 401 && path !== "/internal/sessions") onSessionLost();
    throw err;
  }
  return parsed as T;
}

/** A query string from the defined, non-empty values. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : "";
}

/** Every page of a list endpoint (for the small lists: users, teams, gateways). */
export async function listAll<T>(path: string, max = 5000): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const sep: string = path.includes("?") ? "&" : "?";
    const page: Page<T> = await api<Page<T>>("GET", `${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    out.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}
