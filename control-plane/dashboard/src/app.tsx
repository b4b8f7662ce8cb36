import { useCallback, useEffect, useState } from "react";
import { Link, Redirect, Route, Router, Switch } from "wouter";
import {
  api,
  ApiError,
  setCsrfToken,
  setOrganization,
  setSessionLostHandler,
  type Org,
  type Page,
  type SessionInfo,
} from "./api.js";
import { ApiKeysPage } from "./pages/api-keys.js";
import { AuditLogPage } from "./pages/audit-log.js";
import { GatewaysPage } from "./pages/gateways.js";
import { ModelPricesPage } from "./pages/model-prices.js";
import { SignInPage } from "./pages/sign-in.js";
import { TeamsPage } from "./pages/teams.js";
import { UsagePage } from "./pages/usage.js";
import { UsersPage } from "./pages/users.js";
import { Spinner } from "./ui.js";

const NAV = [
  { href: "/configuration/api-keys", label: "API keys", section: "Configuration" },
  { href: "/gateways", label: "Gateways", section: "Fleet" },
  { href: "/teams", label: "Teams", section: "People" },
  { href: "/users", label: "Users", section: "People" },
  { href: "/usage", label: "Usage", section: "Insights" },
  { href: "/audit-log", label: "Audit log", section: "Insights" },
  { href: "/model-prices", label: "Model prices", section: "Configuration" },
];

/** A member (signed in by SSO) manages their own keys only: the rest of the admin API refuses them. */
function nav(session: SessionInfo) {
  return session.session.actor.role === "member" ? [{ ...NAV[0]!, label: "My keys" }] : NAV;
}

function signedInAs(session: SessionInfo): string {
  const { kind, role, email } = session.session.actor;
  if (kind === "master") return "Signed in with the master key";
  if (kind === "admin_token") return `Signed in with an admin token (${role})`;
  return `Signed in as ${email ?? "a member"} (${role})`;
}

export function App() {
  const [session, setSession] = useState<SessionInfo | null | undefined>(undefined);
  const [orgs, setOrgs] = useState<Org[]>([]);
  const [org, setOrg] = useState<string>("");
  const adopt = useCallback((s: SessionInfo | null) => {
    setCsrfToken(s?.csrf_token);
    setSession(s);
  }, []);
  useEffect(() => {
    setSessionLostHandler(() => adopt(null));
    api<SessionInfo>("GET", "/internal/sessions/current").then(adopt, (err: unknown) => {
      if (err instanceof ApiError && err.status === 401) adopt(null);
      else adopt(null);
    });
  }, [adopt]);

  // The master key acts on every organization: let the admin pick one.
  useEffect(() => {
    if (session?.session.actor.kind !== "master") return;
    api<Page<Org>>("GET", "/internal/orgs").then(
      (p) => setOrgs(p.data),
      () => setOrgs([]),
    );
  }, [session]);

  if (session === undefined) return <Spinner label="Checking your session…" />;
  if (session === null) return <SignInPage onSignedIn={adopt} />;
  return (
    <Router base="/dashboard">
      <div className="shell">
        <a className="skip" href="#main">
          Skip to content
        </a>
        <nav className="sidebar" aria-label="Main">
          <div className="brand">Tollgate</div>
          <ul>
            {nav(session).map((n) => (
              <li key={n.href}>
                <Link href={n.href} className={(active: boolean) => (active ? "active" : "")}>
                  {n.label}
                </Link>
              </li>
            ))}
          </ul>
          {orgs.length > 1 && (
            <div className="org">
              <label htmlFor="org-select">Organization</label>
              <select
                id="org-select"
                value={org}
                onChange={(e) => {
                  setOrganization(e.target.value || undefined);
                  setOrg(e.target.value);
                }}
              >
                {orgs.map((o, i) => (
                  <option key={o.id} value={i === 0 ? "" : o.id}>
                    {o.name}
                  </option>
                ))}
              </select>
            </div>
          )}
          <div className="who">
            <span>{signedInAs(session)}</span>
            <button
              type="button"
              className="secondary"
              onClick={async () => {
                await api("DELETE", "/internal/sessions/current").catch(() => undefined);
                adopt(null);
              }}
            >
              Sign out
            </button>
          </div>
        </nav>
        <main id="main" className="content" key={org}>
          <Switch>
            <Route path="/configuration/api-keys" component={ApiKeysPage} />
            <Route path="/gateways" component={GatewaysPage} />
            <Route path="/teams" component={TeamsPage} />
            <Route path="/users" component={UsersPage} />
            <Route path="/usage" component={UsagePage} />
            <Route path="/audit-log" component={AuditLogPage} />
            <Route path="/model-prices" component={ModelPricesPage} />
            <Route>
              <Redirect to="/configuration/api-keys" replace />
            </Route>
          </Switch>
        </main>
      </div>
    </Router>
  );
}
