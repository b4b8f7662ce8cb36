/**
 * Who may do what on the admin API. Three kinds of actor reach /internal/*:
 * the master key (every organization), an organization-scoped admin token
 * (`admin` or `read_only`) and an organization member signed in by SSO
 * (`admin` or `member`). This module holds the rules; the HTTP layer asks it
 * and maps a refusal to 403.
 */
export type ActorKind = "master" | "admin_token" | "user";
export type ActorRole = "admin" | "read_only" | "member";
export type MemberRole = "admin" | "member";
export type AdminTokenRole = "admin" | "read_only";

export const MEMBER_ROLES: readonly MemberRole[] = ["admin", "member"];
export const ADMIN_TOKEN_ROLES: readonly AdminTokenRole[] = ["admin", "read_only"];

export interface Actor {
  kind: ActorKind;
  /** Null for the master key; the admin token's or the user's id otherwise. */
  id: string | null;
  role: ActorRole;
  /** Null for the master key, which acts on every organization. */
  org_id: string | null;
}

export const MASTER_ACTOR: Actor = Object.freeze({ kind: "master", id: null, role: "admin", org_id: null });

/** The audit log's actor column: `master_key`, `admin_token:adt_…` or `user:user_…`. */
export function actorLabel(actor: Actor): string {
  return actor.kind === "master" ? "master_key" : `${actor.kind}:${actor.id}`;
}

/** The organization a confined actor acts on, whatever the request asks; undefined for the master key. */
export function confinedOrg(actor: Actor): string | undefined {
  return actor.org_id ?? undefined;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export type Decision = { allowed: true } | { allowed: false; reason: string };

const ALLOW: Decision = { allowed: true };

/**
 * What a member may call: their own keys (list, read, create, rotate, ephemeral
 * tokens, deactivate, delete) and their own user record. Whether a key is theirs
 * is checked against the key itself (see `memberKeyId`).
 */
const MEMBER_RULES: Array<{ method: string; path: RegExp }> = [
  { method: "GET", path: /^\/internal\/api-keys$/ },
  { method: "POST", path: /^\/internal\/api-keys$/ },
  { method: "GET", path: /^\/internal\/api-keys\/[^/]+$/ },
  { method: "DELETE", path: /^\/internal\/api-keys\/[^/]+$/ },
  { method: "POST", path: /^\/internal\/api-keys\/[^/]+\/(rotate|deactivate|ephemeral-tokens)$/ },
  { method: "GET", path: /^\/internal\/users\/[^/]+$/ },
  // Answered with the member alone (see http/admin-credentials.ts), so a key form can name its owner.
  { method: "GET", path: /^\/internal\/users$/ },
];

/** Routes only the master key reaches: they span organizations. */
const MASTER_ONLY: Array<{ method: string; path: RegExp }> = [{ method: "POST", path: /^\/internal\/orgs$/ }];

/**
 * Whether `actor` may call `method path` at all (before any resource is read).
 * Ownership of a specific key is a second check, done with the key in hand.
 */
export function authorize(actor: Actor, method: string, path: string): Decision {
  if (actor.kind === "master") return ALLOW;
  const m = method === "HEAD" ? "GET" : method;
  if (MASTER_ONLY.some((r) => r.method === m && r.path.test(path))) {
    return { allowed: false, reason: "only the master key can do this: it spans organizations" };
  }
  switch (actor.role) {
    case "admin":
      return ALLOW;
    case "read_only":
      return SAFE_METHODS.has(method)
        ? ALLOW
        : { allowed: false, reason: "this admin token is read_only: it may only read (GET)" };
    case "member": {
      if (MEMBER_RULES.some((r) => r.method === m && r.path.test(path))) {
        const userPath = /^\/internal\/users\/([^/]+)$/.exec(path);
        if (userPath && userPath[1] !== actor.id)
          return { allowed: false, reason: "a member may only read their own user" };
        return ALLOW;
      }
      return { allowed: false, reason: "a member may only manage their own API keys" };
    }
  }
}

/** The key id of a member-reachable `/internal/api-keys/:id…` path, for the ownership check. */
export function memberKeyId(path: string): string | undefined {
  return /^\/internal\/api-keys\/([^/]+)(?:\/[^/]+)?$/.exec(path)?.[1];
}

/** True when the actor is a member (own keys only), so lists and creates are narrowed to them. */
export function isMember(actor: Actor): actor is Actor & { kind: "user"; id: string; role: "member" } {
  return actor.kind === "user" && actor.role === "member";
}

export interface KeyLimits {
  rpm_limit: number | null;
  tpm_limit: number | null;
  tokens_per_day_limit: number | null;
}

export interface TeamLimits {
  tpm_limit: number | null;
  daily_token_limit: number | null;
}

/**
 * A member creates keys within what their team allows: a key may not ask for more
 * tokens per minute or per day than the team has (unset = the team's limit applies).
 * Returns the field that is over, or undefined.
 */
export function overTeamLimits(
  key: KeyLimits,
  team: TeamLimits | undefined,
): { field: string; limit: number } | undefined {
  if (!team) return undefined;
  if (team.tpm_limit !== null && key.tpm_limit !== null && key.tpm_limit > team.tpm_limit)
    return { field: "tpm_limit", limit: team.tpm_limit };
  if (
    team.daily_token_limit !== null &&
    key.tokens_per_day_limit !== null &&
    key.tokens_per_day_limit > team.daily_token_limit
  ) {
    return { field: "tokens_per_day_limit", limit: team.daily_token_limit };
  }
  return undefined;
}

/** A member's role from configuration: ADMIN_EMAILS or the IdP's admin group, else what the database says. */
export function roleAtSignIn(
  input: { email: string; groups: string[]; stored: MemberRole | undefined },
  config: { adminEmails: string[]; adminGroup: string | undefined },
): MemberRole {
  if (config.adminEmails.includes(input.email.toLowerCase())) return "admin";
  if (config.adminGroup && input.groups.includes(config.adminGroup)) return "admin";
  return input.stored ?? "member";
}
