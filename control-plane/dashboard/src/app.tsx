import { useCallback, useEffect, useState } from "react";
import { Link, Redirect, Route, Router, Switch } from "wouter";
import { api, ApiError, setCsrfToken, setSessionLostHandler, type SessionInfo } from "./api.js";
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

export function App() {
  const [session, setSession] = useState<SessionInfo | null | undefined>(undefined);
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
            {NAV.map((n) => (
              <li key={n.href}>
                <Link href={n.href} className={(active: boolean) => (active ? "active" : "")}>
                  {n.label}
                </Link>
              </li>
            ))}
          </ul>
          <div className="who">
            <span>Signed in with the {session.session.actor.kind === "master" ? "master key" : session.session.actor.kind}</span>
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
        <main id="main" className="content">
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
