import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { ConfigError, generateApiKey, newId } from "@tollgate/shared";
import { writeWithChanges } from "../changes/write-with-changes.js";
import type { SsoConfig } from "../config.js";
import type { AppContext } from "../context.js";
import { DEFAULT_KEY_SETTINGS, insertApiKey, type ApiKey } from "../repositories/api-keys.js";
import { keySyncRecord } from "../repositories/key-sync-records.js";
import { getOrg } from "../repositories/orgs.js";
import { consumeSsoLogin, insertSsoLogin } from "../repositories/sso-logins.js";
import { findTeamByName, getTeam } from "../repositories/teams.js";
import { findUserByExternalId, insertUser, updateUser, type User } from "../repositories/users.js";
import { domainOf, OidcClient, SsoFailure } from "./oidc.js";
import { actorLabel, roleAtSignIn, type Actor, type MemberRole } from "../auth/roles.js";
import { signState, stateKey, verifyState } from "./state.js";

/**
 * The SSO sign-in of seed 000: `/auth/login` starts it, `/auth/callback` ends it
 * with a user upserted by verified email and a new key named `sso`. Each attempt
 * has a server-side row (PKCE verifier, nonce, a hash of a browser-bound cookie),
 * named by an HMAC-signed state that expires after ten minutes and works once.
 */
export interface SsoDeps {
  app: AppContext;
  sso: SsoConfig;
  client: OidcClient;
}

function sha256(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

export interface StartedSignIn {
  /** Where to send the browser. */
  url: URL;
  /** The value of the browser-binding cookie: the callback must come from the same browser. */
  browserToken: string;
  expiresAt: Date;
}

export async function startSignIn(deps: SsoDeps): Promise<StartedSignIn> {
  const now = deps.app.now();
  const id = `sso_${newId("req", now.getTime()).slice(4)}`;
  const secrets = OidcClient.newSecrets();
  const browserToken = randomBytes(24).toString("base64url");
  const expiresAt = new Date(now.getTime() + deps.sso.stateTtlMs);
  const url = await deps.client.authorizationUrl(
    signState({ id, exp: expiresAt.getTime() }, stateKey(deps.app.config.masterKey)),
    secrets,
  );
  await insertSsoLogin(
    deps.app.db,
    { id, browserHash: sha256(browserToken), codeVerifier: secrets.codeVerifier, nonce: secrets.nonce, expiresAt },
    now,
  );
  return { url, browserToken, expiresAt };
}

export interface CompletedSignIn {
  user: User;
  orgId: string;
  role: MemberRole;
  actor: Actor;
  key: ApiKey;
  /** The new key's secret: shown once on the callback page, never stored or logged. */
  secret: string;
  newUser: boolean;
}

/** Checks the callback and, only when everything holds, upserts the user and mints the key. */
export async function completeSignIn(
  deps: SsoDeps,
  query: URLSearchParams,
  browserToken: string | undefined,
): Promise<CompletedSignIn> {
  const { app, sso } = deps;
  const now = app.now();
  const state = query.get("state") ?? undefined;
  const payload = verifyState(state, stateKey(app.config.masterKey), now);
  if (payload === "forged")
    throw new SsoFailure("state_forged", "this sign-in link is not one Tollgate issued: start again from /auth/login");
  if (payload === "expired")
    throw new SsoFailure(
      "state_expired",
      "this sign-in took longer than 10 minutes and has expired: start again from /auth/login",
    );
  const login = await consumeSsoLogin(app.db, payload.id, now);
  if (!login)
    throw new SsoFailure("state_replayed", "this sign-in link was already used: start again from /auth/login");
  if (!browserToken || !timingSafeEqual(sha256(browserToken), login.browserHash)) {
    throw new SsoFailure(
      "browser_mismatch",
      "this sign-in was started in another browser (or its cookie was lost): start again from /auth/login",
    );
  }
  const providerError = query.get("error");
  if (providerError) {
    throw new SsoFailure(
      "provider_error",
      "the identity provider refused the sign-in (for example, consent was denied)",
      {
        error: providerError.replace(/[^\w.-]/g, "").slice(0, 64),
      },
    );
  }
  if (!query.get("code"))
    throw new SsoFailure(
      "missing_code",
      "the identity provider sent no authorization code: start again from /auth/login",
    );
  const identity = await deps.client.exchange(query, state!, { codeVerifier: login.codeVerifier, nonce: login.nonce });
  const domain = domainOf(identity.email);
  if (sso.allowedDomains.length > 0 && !sso.allowedDomains.includes(domain)) {
    throw new SsoFailure("domain_not_allowed", `accounts of ${domain} may not sign in here`, { domain });
  }
  const orgId = sso.orgByDomain[domain] ?? sso.defaultOrgId ?? app.defaultOrgId;
  try {
    return await mintSsoKey(deps, orgId, identity);
  } catch (err) {
    // Two first sign-ins of one email at once: the loser finds the user the winner created.
    if ((err as { code?: string }).code !== "23505") throw err;
    return mintSsoKey(deps, orgId, identity);
  }
}

async function mintSsoKey(
  deps: SsoDeps,
  orgId: string,
  identity: { email: string; groups: string[] },
): Promise<CompletedSignIn> {
  const { app, sso } = deps;
  const minted = generateApiKey();
  const now = app.now();
  const d = sso.keyDefaults;
  const { result } = await writeWithChanges(app, orgId, async (scope) => {
    const { trx } = scope;
    let user = await findUserByExternalId(trx, orgId, identity.email);
    const newUser = !user;
    const role = roleAtSignIn(
      { email: identity.email, groups: identity.groups, stored: user?.role },
      { adminEmails: app.config.adminEmails, adminGroup: sso.adminGroup },
    );
    if (!user) {
      const teamId = await defaultTeamId(trx, orgId, sso.defaultTeam);
      user = await insertUser(trx, orgId, { external_id: identity.email, team_id: teamId, role });
      scope.audit({
        orgId,
        actor: `user:${user.id}`,
        action: "user.create",
        targetType: "user",
        targetId: user.id,
        after: { ...user, via: "sso" },
      });
    } else if (user.role !== role) {
      // Configuration only ever promotes (ADMIN_EMAILS, the admin group); demotion is the admin API's.
      const before = user;
      user = (await updateUser(trx, orgId, user.id, { role }))!;
      scope.audit({
        orgId,
        actor: "config:sso",
        action: "user.update",
        targetType: "user",
        targetId: user.id,
        before: { role: before.role },
        after: { role },
      });
    }
    const actor: Actor = { kind: "user", id: user.id, role, org_id: orgId };
    const key = await insertApiKey(trx, {
      id: newId("ak"),
      orgId,
      userId: user.id,
      name: "sso",
      hash: minted.hash,
      prefix: minted.prefix,
      settings: {
        ...DEFAULT_KEY_SETTINGS,
        rpm_limit: d.rpmLimit ?? null,
        tpm_limit: d.tpmLimit ?? null,
        tokens_per_day_limit: d.tokensPerDayLimit ?? null,
        budget_usd: d.budgetUsd ?? null,
        expires_at: d.expiresInMs !== undefined ? new Date(now.getTime() + d.expiresInMs) : null,
      },
    });
    scope.emit({ kind: "key_upsert", resourceId: key.id, payload: await keySyncRecord(trx, orgId, key.id) });
    scope.audit({
      orgId,
      actor: actorLabel(actor),
      action: "api_key.create",
      targetType: "api_key",
      targetId: key.id,
      after: { ...key, via: "sso" } as unknown as Record<string, unknown>,
    });
    return { user, orgId, role, actor, key, secret: minted.key, newUser };
  });
  return result;
}

/** The configured team of new users: an id, else a name in the user's organization; none when unset or not there. */
async function defaultTeamId(trx: AppContext["db"], orgId: string, team: string | undefined): Promise<string | null> {
  if (!team) return null;
  const found = /^team_[0-9a-z]{26}$/.test(team)
    ? await getTeam(trx, orgId, team)
    : await findTeamByName(trx, orgId, team);
  return found?.id ?? null;
}

/**
 * Start-time check that the organizations SSO lands users in exist (a typo must stop
 * the process, not a sign-in). A missing default team only warns: it may be created
 * after the first start, and until then new users get no team.
 */
export async function verifySsoTargets(
  app: Pick<AppContext, "db" | "defaultOrgId" | "logger">,
  sso: SsoConfig,
): Promise<void> {
  const orgs = [...new Set([...(sso.defaultOrgId ? [sso.defaultOrgId] : []), ...Object.values(sso.orgByDomain)])];
  for (const orgId of orgs) {
    if (!(await getOrg(app.db, orgId))) {
      const name = orgId === sso.defaultOrgId ? "SSO_DEFAULT_ORG" : "SSO_DOMAIN_ORGS";
      throw new ConfigError(
        `${name} names organization ${orgId}, which does not exist: create it first (POST /internal/orgs)`,
      );
    }
  }
  if (!sso.defaultTeam) return;
  for (const orgId of new Set([...orgs, sso.defaultOrgId ?? app.defaultOrgId])) {
    if (!(await defaultTeamId(app.db, orgId, sso.defaultTeam))) {
      app.logger.warn(
        { orgId, team: sso.defaultTeam },
        "SSO_DEFAULT_TEAM names no team of this organization: its new SSO users get no team until one exists",
      );
    }
  }
}
