import * as oidc from "openid-client";

/**
 * OpenID Connect sign-in through `openid-client` (discovery, PKCE, nonce and
 * ID-token validation are the library's; nothing here checks a JWT by hand).
 * Domain code only: the HTTP layer maps a `SsoFailure` to a page.
 */
export interface OidcOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

/** Why a sign-in failed, as the audit log and the page name it; never a secret. */
export type SsoFailureReason =
  | "sso_off"
  | "state_forged"
  | "state_expired"
  | "state_replayed"
  | "browser_mismatch"
  | "provider_error"
  | "missing_code"
  | "exchange_failed"
  | "no_email"
  | "email_unverified"
  | "domain_not_allowed"
  | "provider_unreachable"
  | "rate_limited";

export class SsoFailure extends Error {
  constructor(
    readonly reason: SsoFailureReason,
    message: string,
    /** Safe details for the audit row (an OAuth error code, a domain), never a token or code. */
    readonly details: Record<string, string> = {},
  ) {
    super(message);
    this.name = "SsoFailure";
  }
}

/** What a successful exchange tells about the person. */
export interface VerifiedIdentity {
  email: string;
  subject: string;
  groups: string[];
}

export interface LoginSecrets {
  codeVerifier: string;
  nonce: string;
}

function isLoopback(url: URL): boolean {
  return url.hostname === "localhost" || url.hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
}

export class OidcClient {
  private configuration: Promise<oidc.Configuration> | undefined;

  constructor(private readonly options: OidcOptions) {}

  /** Discovery runs once, on first use; a failure is retried on the next sign-in. */
  private discover(): Promise<oidc.Configuration> {
    this.configuration ??= (async () => {
      const issuer = new URL(this.options.issuer);
      // config.ts accepts plain http only on loopback (local development and tests).
      const insecure = issuer.protocol === "http:" && isLoopback(issuer);
      return oidc.discovery(
        issuer,
        this.options.clientId,
        undefined,
        oidc.ClientSecretPost(this.options.clientSecret),
        {
          ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
          timeout: 10,
        },
      );
    })().catch((err: unknown) => {
      this.configuration = undefined;
      throw new SsoFailure("provider_unreachable", "the identity provider could not be reached; try again shortly", {
        error: (err as { code?: string }).code ?? (err as Error).name,
      });
    });
    return this.configuration;
  }

  static newSecrets(): LoginSecrets {
    return { codeVerifier: oidc.randomPKCECodeVerifier(), nonce: oidc.randomNonce() };
  }

  /** The provider's consent URL for one sign-in. */
  async authorizationUrl(state: string, secrets: LoginSecrets): Promise<URL> {
    const config = await this.discover();
    return oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.options.redirectUri,
      scope: "openid email profile",
      response_type: "code",
      state,
      nonce: secrets.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(secrets.codeVerifier),
      code_challenge_method: "S256",
      // Google: let the user pick the account each time rather than reuse a silent session
      // (a value other providers may refuse, so only there).
      ...(new URL(this.options.issuer).hostname === "accounts.google.com" ? { prompt: "select_account" } : {}),
    });
  }

  /**
   * Exchanges the code of a callback (its query string, state already checked by the
   * caller) and validates the ID token: signature, issuer, audience, expiry, nonce.
   */
  async exchange(query: URLSearchParams, state: string, secrets: LoginSecrets): Promise<VerifiedIdentity> {
    const config = await this.discover();
    const callback = new URL(this.options.redirectUri);
    callback.search = query.toString();
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: secrets.codeVerifier,
        expectedNonce: secrets.nonce,
        expectedState: state,
        idTokenExpected: true,
      });
    } catch (err) {
      // The library's errors carry the OAuth error code; their messages may quote the response, so only the code is kept.
      const e = err as { error?: unknown; code?: unknown; name?: string };
      const code = typeof e.error === "string" ? e.error : typeof e.code === "string" ? e.code : (e.name ?? "error");
      throw new SsoFailure(
        "exchange_failed",
        "the identity provider did not accept this sign-in (the code may be used or expired): start again",
        { error: code.slice(0, 64) },
      );
    }
    const idClaims = tokens.claims();
    if (!idClaims)
      throw new SsoFailure("exchange_failed", "the identity provider returned no ID token", { error: "no_id_token" });
    let claims: Record<string, unknown> = idClaims;
    // Google puts the email in the ID token; providers that follow the spec to the letter
    // put scope claims in UserInfo only, fetched here for the same (already verified) subject.
    if (typeof idClaims.email !== "string") {
      try {
        claims = { ...(await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub)), sub: idClaims.sub };
      } catch (err) {
        const e = err as { error?: unknown; code?: unknown; name?: string };
        const code = typeof e.error === "string" ? e.error : typeof e.code === "string" ? e.code : (e.name ?? "error");
        throw new SsoFailure("exchange_failed", "the identity provider's UserInfo endpoint failed", {
          error: code.slice(0, 64),
        });
      }
    }
    const email = typeof claims.email === "string" ? claims.email.trim().toLowerCase() : "";
    if (!email || !/^[^@\s]+@[^@\s]+$/.test(email))
      throw new SsoFailure("no_email", "the identity provider did not share an email address: allow the email scope");
    // Google sends a boolean; some providers send the string "true".
    if (claims.email_verified !== true && claims.email_verified !== "true") {
      throw new SsoFailure(
        "email_unverified",
        "this account's email address is not verified with the identity provider",
        { domain: domainOf(email) },
      );
    }
    const groups = Array.isArray(claims.groups) ? claims.groups.filter((g): g is string => typeof g === "string") : [];
    return { email, subject: idClaims.sub, groups };
  }
}

export function domainOf(email: string): string {
  return email.slice(email.lastIndexOf("@") + 1);
}
