import { useState } from "react";
import { api, type ApiKey, type Revealed } from "../../api.js";
import { Dialog, ErrorBanner, SecretBox, StatusBadge, formatDate, formatNumber } from "../../ui.js";
import { EditKeyForm } from "./edit-key-form.js";
import { EphemeralForm, RotateForm } from "./rotate-key-form.js";

/** Row click: the key's settings and every action of seed 004's detail dialog. */
export function KeyDetailDialog(props: {
  apiKey: ApiKey;
  onClose: () => void;
  onChanged: (k: ApiKey) => void;
  onRotated: (k: Revealed) => void;
  onDelete: (k: ApiKey) => void;
}) {
  const k = props.apiKey;
  const [mode, setMode] = useState<"view" | "edit" | "rotate" | "ephemeral">("view");
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [token, setToken] = useState<{ token: string; expires_at: string } | undefined>();

  async function run<T>(fn: () => Promise<T>, done: (v: T) => void) {
    setBusy(true);
    setError(undefined);
    try {
      done(await fn());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Dialog title={k.name} onClose={props.onClose} wide testId="key-detail">
      <dl className="facts">
        <dt>Status</dt>
        <dd>
          <StatusBadge status={k.status} />
        </dd>
        <dt>Key</dt>
        <dd>
          <code>{k.key_prefix}…</code>
        </dd>
        <dt>Owner</dt>
        <dd>{k.owner ?? k.user_id}</dd>
        <dt>Expires</dt>
        <dd>{k.expires_at ? formatDate(k.expires_at) : "Never"}</dd>
        <dt>Requests/min</dt>
        <dd>{formatNumber(k.rpm_limit)}</dd>
        <dt>Tokens/min</dt>
        <dd>{formatNumber(k.tpm_limit)}</dd>
        <dt>Budget</dt>
        <dd>{k.budget_usd === null ? "—" : `$${k.budget_usd} (spent $${k.spend_usd.toFixed(4)})`}</dd>
        <dt>Allowed providers</dt>
        <dd>{k.allowed_providers.length ? k.allowed_providers.join(", ") : "All"}</dd>
        <dt>Allowed models</dt>
        <dd>{k.allowed_models.length ? k.allowed_models.join(", ") : "All"}</dd>
        <dt>IP allowlist</dt>
        <dd>{k.ip_allowlist.length ? k.ip_allowlist.join(", ") : "Any IP"}</dd>
        <dt>MCP</dt>
        <dd>
          {k.mcp_enabled
            ? `${k.mcp_access_mode.replace("_", " ")}${k.mcp_servers.length ? `: ${k.mcp_servers.join(", ")}` : ""}`
            : "Disabled"}
        </dd>
        <dt>Last used</dt>
        <dd>{k.last_used_at ? formatDate(k.last_used_at) : "Never"}</dd>
      </dl>

      {mode === "edit" && (
        <EditKeyForm
          apiKey={k}
          onCancel={() => setMode("view")}
          onSaved={(u) => (setMode("view"), props.onChanged(u))}
        />
      )}
      {mode === "rotate" && <RotateForm apiKey={k} onCancel={() => setMode("view")} onRotated={props.onRotated} />}
      {mode === "ephemeral" && (
        <EphemeralForm
          onCancel={() => setMode("view")}
          busy={busy}
          onIssue={(ttl) =>
            run(
              () =>
                api<{ token: string; expires_at: string }>("POST", `/internal/api-keys/${k.id}/ephemeral-tokens`, {
                  ttl_seconds: ttl,
                }),
              setToken,
            )
          }
        />
      )}
      {token && (
        <SecretBox
          title={`Ephemeral token issued (expires ${formatDate(token.expires_at)}). Copy it now`}
          secret={token.token}
          noun="key"
          testId="ephemeral-token"
        />
      )}
      <ErrorBanner error={error} />
      {mode === "view" && (
        <footer className="dialog-foot actions">
          <button type="button" className="secondary" onClick={() => setMode("edit")}>
            Edit
          </button>
          {k.status === "active" && (
            <button type="button" className="secondary" onClick={() => setMode("rotate")}>
              Rotate Key
            </button>
          )}
          {k.status === "active" && (
            <button type="button" className="secondary" onClick={() => setMode("ephemeral")}>
              Ephemeral Token
            </button>
          )}
          {k.status === "active" && (
            <button
              type="button"
              className="secondary"
              disabled={busy}
              onClick={() => run(() => api<ApiKey>("POST", `/internal/api-keys/${k.id}/deactivate`), props.onChanged)}
            >
              Deactivate
            </button>
          )}
          {(k.status === "inactive" || k.status === "revoked") && (
            <button
              type="button"
              className="secondary"
              disabled={busy}
              onClick={() => run(() => api<ApiKey>("POST", `/internal/api-keys/${k.id}/activate`), props.onChanged)}
            >
              Activate
            </button>
          )}
          <button type="button" className="danger" onClick={() => props.onDelete(k)}>
            Delete
          </button>
        </footer>
      )}
    </Dialog>
  );
}
