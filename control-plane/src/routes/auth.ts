import { randomBytes } from "node:crypto";
import Router from "@koa/router";
import { AppError } from "@tollgate/shared";
import type { Context, Middleware } from "koa";
import { OidcClient, SsoFailure, type SsoFailureReason } from "../sso/oidc.js";
import { actorLabel } from "../auth/roles.js";
import { openSession } from "../auth/sessions.js";
import { completeSignIn, startSignIn, type CompletedSignIn, type SsoDeps } from "../sso/sign-in.js";
import type { AppContext } from "../context.js";
import { ClientRateLimiter } from "../http/rate-limit.js";
import { setSessionCookie } from "../http/session-auth.js";
import { recordAudit } from "../repositories/audit-log.js";

/** Binds a sign-in to the browser that started it; Lax so the provider's redirect back carries it. */
const BROWSER_COOKIE = "tollgate_sso";
export const KEY_WARNING = "This key will not be shown again. Make sure to save it securely.";
const DASHBOARD_KEYS = "/dashboard/configuration/api-keys";

/** How each failure answers: bad or stale links are 400, an identity that may not sign in is 403. */
const FAILURE_STATUS: Record<SsoFailureReason, number> = {
  sso_off: 404,
  state_forged: 400,
  state_expired: 400,
  state_replayed: 400,
  browser_mismatch: 400,
  provider_error: 400,
  missing_code: 400,
  exchange_failed: 400,
  no_email: 403,
  email_unverified: 403,
  domain_not_allowed: 403,
  provider_unreachable: 502,
  rate_limited: 429,
};

function escapeHtml(value: string): string {
  return value.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

/** Pages carry a secret (the key) or an error: never cached, never framed, no referrer, only our own inline code. */
function page(ctx: Context, status: number, title: string, body: string, script = ""): void {
  const nonce = randomBytes(16).toString("base64");
  ctx.status = status;
  ctx.set("Cache-Control", "no-store");
  ctx.set("Pragma", "no-cache");
  ctx.set("Referrer-Policy", "no-referrer");
  ctx.set("X-Content-Type-Options", "nosniff");
  ctx.set("X-Frame-Options", "DENY");
  ctx.set(
    "Content-Security-Policy",
    `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  );
  ctx.type = "text/html; charset=utf-8";
  ctx.body = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Tollgate</title>
<style nonce="${nonce}">
body{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#1b1b1f;line-height:1.5}
h1{font-size:1.4rem}
.key{display:flex;gap:.5rem;align-items:center;margin:1rem 0}
code{font-family:ui-monospace,monospace;background:#f2f2f5;padding:.4rem .6rem;border-radius:4px;word-break:break-all}
button{padding:.4rem .9rem;border:1px solid #555;border-radius:4px;background:#fff;cursor:pointer}
.warning{border-left:4px solid #c77700;background:#fff6e5;padding:.6rem .9rem}
.error{border-left:4px solid #b3261e;background:#fdecea;padding:.6rem .9rem}
</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
${script ? `<script nonce="${nonce}">${script}</script>` : ""}
</body>
</html>
`;
}

function keyPage(ctx: Context, signIn: CompletedSignIn): void {
  const { key, secret, user, role } = signIn;
  page(
    ctx,
    200,
    "Your Tollgate API key",
    `<p>Signed in as <strong>${escapeHtml(user.external_id)}</strong> (${escapeHtml(role)}). A new key named <code>sso</code> was created for you.</p>
<div class="key"><code id="api-key" data-key-prefix="${escapeHtml(key.key_prefix)}">${escapeHtml(secret)}</code>
<button type="button" id="copy-key">Copy</button><span id="copy-status" role="status" aria-live="polite"></span></div>
<p>Key prefix: <code id="key-prefix">${escapeHtml(key.key_prefix)}</code> — use it to tell which key is current.</p>
<p class="warning" role="alert">${escapeHtml(KEY_WARNING)}</p>
<p>Put it in your <code>.env</code> or shell profile, e.g. <code>export OPENAI_API_KEY=…</code>. Each sign-in creates a new key; older keys stay valid until deleted.</p>
<p><a href="${DASHBOARD_KEYS}">My keys</a></p>`,
    `document.getElementById("copy-key").addEventListener("click",function(){var k=document.getElementById("api-key").textContent,s=document.getElementById("copy-status");navigator.clipboard.writeText(k).then(function(){s.textContent="Copied"},function(){s.textContent="Copy failed: select the key and copy it by hand"})});`,
  );
}

function failurePage(ctx: Context, failure: SsoFailure): void {
  const status = FAILURE_STATUS[failure.reason];
  page(
    ctx,
    status,
    "Sign-in failed",
    `<p class="error" role="alert" data-reason="${escapeHtml(failure.reason)}">${escapeHtml(failure.message)}</p>
<p>No API key was created.</p>
<p><a href="/auth/login">Sign in again</a></p>`,
  );
}

/** `Set-Cookie` written by hand: Koa refuses Secure cookies on a plain-HTTP hop behind a TLS proxy. */
function browserCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${BROWSER_COOKIE}=${value}; Path=/auth/callback; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${secure ? "; Secure" : ""}`;
}

/** Without SSO configured, every /auth path answers 404 JSON saying so. */
export function ssoOffGate(app: Pick<AppContext, "config">): Middleware {
  return (ctx, next) => {
    if (!app.config.sso && (ctx.path === "/auth" || ctx.path.startsWith("/auth/"))) {
      throw new AppError(
        "not_found",
        "SSO is off: set GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET and AUTH_BASE_URL to turn on sign-in",
      );
    }
    return next();
  };
}

/**
 * SSO pages: `/auth/login` sends the browser to the provider, `/auth/callback`
 * shows the new `sso` key once and opens a dashboard session with the user's role.
 * Without SSO configured, both answer 404 JSON saying SSO is off.
 */
export function authRoutes(app: AppContext, overrides: { client?: OidcClient } = {}): Router {
  const router = new Router();
  const sso = app.config.sso;
  const deps: SsoDeps | undefined = sso && {
    app,
    sso,
    client:
      overrides.client ??
      new OidcClient({
        issuer: sso.issuer,
        clientId: sso.clientId,
        clientSecret: sso.clientSecret,
        redirectUri: sso.redirectUri,
      }),
  };
  const secureCookie = sso ? sso.baseUrl.startsWith("https:") : false;
  const starts = sso && new ClientRateLimiter(sso.loginsPerMinute);

  async function auditFailure(ctx: Context, failure: SsoFailure) {
    app.metrics.ssoSignIn(failure.reason);
    await recordAudit(app.db, {
      orgId: sso?.defaultOrgId ?? app.defaultOrgId,
      actor: `ip:${ctx.ip || "unknown"}`,
      action: "sso.sign_in_failed",
      targetType: "sso_login",
      targetId: "-",
      after: { reason: failure.reason, ...failure.details },
      requestId: ctx.state.requestId,
    });
    app.logger.info(
      { reason: failure.reason, ...failure.details, requestId: ctx.state.requestId },
      "SSO sign-in refused",
    );
  }

  router.get("/auth/login", async (ctx) => {
    // Each start writes a row and asks the provider: bounded per address, refused before any of it.
    // Not audited one by one (a flood would become audit rows); the metric counts them.
    const wait = starts!.take(ctx.ip || "unknown");
    if (wait > 0) {
      app.metrics.ssoSignIn("rate_limited");
      ctx.set("Retry-After", String(wait));
      const message = `Too many sign-ins were started from this address. Wait ${wait} s, then sign in again.`;
      return failurePage(ctx, new SsoFailure("rate_limited", message));
    }
    try {
      const started = await startSignIn(deps!);
      ctx.append(
        "Set-Cookie",
        browserCookie(started.browserToken, Math.ceil(deps!.sso.stateTtlMs / 1000), secureCookie),
      );
      ctx.set("Cache-Control", "no-store");
      ctx.set("Referrer-Policy", "no-referrer");
      ctx.redirect(started.url.href);
    } catch (err) {
      if (!(err instanceof SsoFailure)) throw err;
      await auditFailure(ctx, err);
      failurePage(ctx, err);
    }
  });

  router.get("/auth/callback", async (ctx) => {
    const query = new URLSearchParams(ctx.querystring);
    // Single use either way: the browser cookie is cleared whatever the outcome.
    ctx.append("Set-Cookie", browserCookie("", 0, secureCookie));
    let signIn: CompletedSignIn;
    try {
      signIn = await completeSignIn(deps!, query, ctx.cookies.get(BROWSER_COOKIE) || undefined);
    } catch (err) {
      if (!(err instanceof SsoFailure)) throw err;
      await auditFailure(ctx, err);
      return failurePage(ctx, err);
    }
    const opened = await openSession(app.db, signIn.actor, app.config.sessions, app.now());
    await recordAudit(app.db, {
      orgId: signIn.orgId,
      actor: actorLabel(signIn.actor),
      action: "sso.sign_in",
      targetType: "user",
      targetId: signIn.user.id,
      after: {
        role: signIn.role,
        new_user: signIn.newUser,
        key_id: signIn.key.id,
        key_prefix: signIn.key.key_prefix,
        session_id: opened.session.id,
      },
      requestId: ctx.state.requestId,
    });
    app.logger.info(
      { userId: signIn.user.id, orgId: signIn.orgId, keyId: signIn.key.id, requestId: ctx.state.requestId },
      "SSO sign-in",
    );
    app.metrics.ssoSignIn("ok");
    setSessionCookie(ctx, opened.token, opened.session.expiresAt);
    keyPage(ctx, signIn);
  });

  return router;
}
