import { useState } from "react";
import { api, type Gateway, type GatewayToken, type Page } from "../api.js";
import { CopyButton, Dialog, EmptyState, ErrorBanner, Field, fieldErrors, formatDate, useLoad } from "../ui.js";

/** The fleet: each gateway's connection and sync state, and the tokens gateways enroll with. */
export function GatewaysPage() {
  const gateways = useLoad(() => api<Page<Gateway>>("GET", "/internal/gateways"), []);
  const tokens = useLoad(() => api<Page<GatewayToken>>("GET", "/internal/gateway-tokens"), []);
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<string | undefined>();
  const [error, setError] = useState<unknown>();
  return (
    <section aria-labelledby="gw-title">
      <div className="page-head">
        <div>
          <p className="crumb">Fleet</p>
          <h1 id="gw-title">Gateways</h1>
          <p className="muted">Every gateway attached to this organization, with the revision of the key set it has applied.</p>
        </div>
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          New gateway token
        </button>
      </div>
      <ErrorBanner error={gateways.error ?? error} />
      {gateways.data && gateways.data.data.length === 0 ? (
        <EmptyState title="No gateway has connected yet">
          Create a gateway token, then start a gateway with GATEWAY_TOKEN set to it and CONTROL_PLANE_URL pointing here; it shows up within seconds.
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Connected</th>
                <th>Applied revision</th>
                <th>Lag</th>
                <th>Last seen</th>
                <th>Version</th>
              </tr>
            </thead>
            <tbody>
              {gateways.data?.data.map((g) => (
                <tr key={g.id}>
                  <td>{g.name}</td>
                  <td>
                    <span className={`badge ${g.connected ? "active" : "inactive"}`}>{g.connected ? "connected" : "offline"}</span>
                  </td>
                  <td className="num">
                    {g.applied_revision} / {g.current_revision}
                  </td>
                  <td className="num">{g.lag}</td>
                  <td>{formatDate(g.last_seen_at)}</td>
                  <td>{g.version ?? "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Gateway tokens</h2>
      {tokens.data && tokens.data.data.length === 0 ? (
        <EmptyState title="No gateway tokens">A gateway enrolls with a token: create one with New gateway token.</EmptyState>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Token</th>
                <th>Created</th>
                <th>Status</th>
                <th>
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {tokens.data?.data.map((t) => (
                <tr key={t.id}>
                  <td>{t.name}</td>
                  <td>
                    <code>{t.token_prefix}…</code>
                  </td>
                  <td>{formatDate(t.created_at)}</td>
                  <td>{t.revoked_at ? `revoked ${formatDate(t.revoked_at)}` : "active"}</td>
                  <td>
                    {!t.revoked_at && (
                      <button
                        type="button"
                        className="danger small"
                        onClick={async () => {
                          if (!window.confirm(`Revoke the gateway token ‘${t.name}’? Gateways using it disconnect at once.`)) return;
                          try {
                            await api("DELETE", `/internal/gateway-tokens/${t.id}`);
                            tokens.reload();
                            gateways.reload();
                          } catch (err) {
                            setError(err);
                          }
                        }}
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {creating && (
        <NewTokenDialog
          onClose={() => setCreating(false)}
          onCreated={(s) => {
            setCreating(false);
            setSecret(s);
            tokens.reload();
          }}
        />
      )}
      {secret && (
        <Dialog title="Gateway token created" onClose={() => setSecret(undefined)}>
          <div className="success-box">
            <p className="success-title">Gateway token created! Copy it now</p>
            <pre className="secret" tabIndex={0}>
              {secret}
            </pre>
            <CopyButton text={secret} />
            <p className="warning">This token will not be shown again. Make sure to save it securely.</p>
          </div>
          <footer className="dialog-foot">
            <button type="button" className="primary" onClick={() => setSecret(undefined)}>
              Done
            </button>
          </footer>
        </Dialog>
      )}
    </section>
  );
}

function NewTokenDialog(props: { onClose: () => void; onCreated: (secret: string) => void }) {
  const [name, setName] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [general, setGeneral] = useState<string | undefined>();
  return (
    <Dialog title="New gateway token" onClose={props.onClose}>
      <form
        noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          if (!name.trim()) return setErrors({ name: "is required" });
          try {
            const t = await api<{ token: string }>("POST", "/internal/gateway-tokens", { name: name.trim() });
            props.onCreated(t.token);
          } catch (err) {
            const fe = fieldErrors(err, ["name"]);
            setErrors(fe.fields);
            setGeneral(fe.general);
          }
        }}
      >
        <Field label="Name" error={errors.name}>
          {(id, db) => <input id={id} value={name} aria-describedby={db} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <ErrorBanner error={general} />
        <footer className="dialog-foot">
          <button type="button" className="secondary" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" className="primary">
            Create
          </button>
        </footer>
      </form>
    </Dialog>
  );
}
