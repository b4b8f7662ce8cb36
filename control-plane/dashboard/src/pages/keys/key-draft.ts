import type { FormBody } from "../../api.js";

export const PROVIDERS = ["openai", "anthropic", "azure-openai", "gemini"] as const;
export const EXPIRATIONS = [
  ["never", "Never"],
  ["30d", "30 days"],
  ["60d", "60 days"],
  ["90d", "90 days"],
  ["180d", "180 days"],
  ["1y", "1 year"],
] as const;
export const MCP_MODES = [
  ["allow_all", "Allow All"],
  ["deny_all", "Deny All"],
  ["allow_list", "Allow List"],
  ["deny_list", "Deny List"],
] as const;

export type Tab = "basic" | "advanced" | "mcp";
export const TAB_OF: Record<string, Tab> = {
  allowed_models: "advanced",
  ip_allowlist: "advanced",
  metadata: "advanced",
  mcp_enabled: "mcp",
  mcp_access_mode: "mcp",
  mcp_servers: "mcp",
  mcp_tools: "mcp",
};
export const KNOWN_FIELDS = [
  "name",
  "user_id",
  "expires_at",
  "rpm_limit",
  "tpm_limit",
  "budget_usd",
  "budget_alert_thresholds",
  "allowed_providers",
  "ttl_seconds",
  "allowed_models",
  "ip_allowlist",
  "metadata",
  "mcp_enabled",
  "mcp_access_mode",
  "mcp_servers",
  "mcp_tools",
] as const;

export const list = (s: string) =>
  s
    .split(",")
    .map((v) => v.trim())
    .filter(Boolean);

/** A whole positive number, or undefined for an empty box; throws a message for anything else. */
export function positiveInt(raw: string, label = "a whole number of at least 1"): number | undefined {
  if (raw.trim() === "") return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`must be ${label}`);
  return n;
}

export interface Draft {
  name: string;
  user_id: string;
  expires_at: string;
  rpm_limit: string;
  tpm_limit: string;
  budget_usd: string;
  budget_alert_thresholds: string;
  ephemeral: boolean;
  ttl_seconds: string;
  providers: Record<string, boolean>;
  allowed_models: string;
  ip_allowlist: string;
  metadata: string;
  mcp_enabled: boolean;
  mcp_access_mode: (typeof MCP_MODES)[number][0];
  mcp_servers: string;
  mcp_tools: Record<string, string[]>;
}

export const EMPTY: Draft = {
  name: "",
  user_id: "",
  expires_at: "never",
  rpm_limit: "",
  tpm_limit: "",
  budget_usd: "",
  budget_alert_thresholds: "",
  ephemeral: false,
  ttl_seconds: "3600",
  providers: Object.fromEntries(PROVIDERS.map((p) => [p, true])),
  allowed_models: "",
  ip_allowlist: "",
  metadata: "",
  mcp_enabled: false,
  mcp_access_mode: "allow_all",
  mcp_servers: "",
  mcp_tools: {},
};

/** The request body, or the form's own per-field errors (nothing is sent then). */
type CreateBody = FormBody<"/internal/api-keys", "post">;

export function toBody(d: Draft): { body: CreateBody; ttl: number } | { errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const body: CreateBody = { name: d.name.trim(), user_id: d.user_id };
  const take = (field: keyof CreateBody, fn: () => unknown) => {
    try {
      const v = fn();
      if (v !== undefined) body[field] = v;
    } catch (e) {
      errors[field] = (e as Error).message;
    }
  };
  if (!body.name) errors.name = "is required";
  if (!d.user_id) errors.user_id = "pick the member who will own the key";
  if (d.expires_at !== "never") body.expires_at = d.expires_at;
  take("rpm_limit", () => positiveInt(d.rpm_limit));
  take("tpm_limit", () => positiveInt(d.tpm_limit));
  take("budget_usd", () => {
    if (d.budget_usd.trim() === "") return undefined;
    const n = Number(d.budget_usd);
    if (!Number.isFinite(n) || n <= 0) throw new Error("must be an amount in USD above 0");
    return n;
  });
  if (body.budget_usd !== undefined) {
    take("budget_alert_thresholds", () => {
      const t = list(d.budget_alert_thresholds).map(Number);
      if (t.some((v) => !Number.isInteger(v) || v < 1 || v > 1000))
        throw new Error("must be whole percentages, e.g. 50,80,100");
      return t.length ? t : undefined;
    });
  }
  const enabled = PROVIDERS.filter((p) => d.providers[p]);
  if (enabled.length === 0) errors.allowed_providers = "turn at least one provider on (all on = no restriction)";
  else if (enabled.length < PROVIDERS.length) body.allowed_providers = enabled;
  const models = list(d.allowed_models);
  if (models.length) body.allowed_models = models;
  const ips = list(d.ip_allowlist);
  if (ips.length) body.ip_allowlist = ips;
  take("metadata", () => {
    if (d.metadata.trim() === "") return undefined;
    let v: unknown;
    try {
      v = JSON.parse(d.metadata);
    } catch {
      throw new Error('must be valid JSON, e.g. {"team": "backend"}');
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("must be a JSON object");
    return v;
  });
  if (d.mcp_enabled) {
    body.mcp_enabled = true;
    body.mcp_access_mode = d.mcp_access_mode;
    const servers = list(d.mcp_servers);
    if (servers.length) body.mcp_servers = servers;
    const tools = Object.fromEntries(
      Object.entries(d.mcp_tools).filter(([s, t]) => servers.includes(s) && t.length > 0),
    );
    if (Object.keys(tools).length) body.mcp_tools = tools;
  }
  let ttl = 3600;
  if (d.ephemeral) {
    const n = Number(d.ttl_seconds);
    if (!Number.isInteger(n) || n < 60 || n > 86400)
      errors.ttl_seconds = "must be a whole number of seconds from 60 to 86400";
    else ttl = n;
  }
  return Object.keys(errors).length ? { errors } : { body, ttl };
}
