import { useState } from "react";
import { api, type Gateway, type GatewayToken, type Page } from "../api.js";
import { ActionButton, DataTable } from "../list.js";
import {
  Dialog,
  EmptyState,
  ErrorBanner,
  Field,
  FormDialog,
  PageSection,
  SecretBox,
  fieldErrors,
  formatDate,
  useLoad,
} from "../ui.js";

/** The fleet: each gateway's connection and sync state, and the tokens gateways enroll with. */
export function GatewaysPage() {
  const gateways = useLoad(() => api<Page<Gateway>>("GET", "/internal/gateways"), []);
  const tokens = useLoad(() => api<Page<GatewayToken>>("GET", "/internal/gateway-tokens"), []);
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<string | undefined>();
  const [error, setError] = useState<unknown>();
  return (
    <PageSection
      crumb="Fleet"
      title="Gateways"
      intro="Every gateway attached to this organization, with the revision of the key set it has applied."
      action={{ label: "New gateway token", onClick: () => setCreating(true) }}
    >
      <ErrorBanner error={gateways.error ?? error} />
      {gateways.data && gateways.data.data.length === 0 ? (
        <EmptyState title="No gateway has connected yet">
          Create a gateway token, then start a gateway with GATEWAY_TOKEN set to it and CONTROL_PLANE_URL pointing here;
          it shows up within seconds.
        </EmptyState>
      ) : (
        <DataTable headers={["Name", "Connected", "Applied revision", "Lag", "Last seen", "Version"]}>
          {gateways.data?.data.map((g) => (
            <tr key={g.id}>
              <td>{g.name}</td>
              <td>
                <span className={`badge ${g.connected ? "active" : "inactive"}`}>
                  {g.connected ? "connected" : "offline"}
                </span>
              </td>
              <td className="num">
                {g.applied_revision} / {g.current_revision}
              </td>
              <td className="num">{g.lag}</td>
              <td>{formatDate(g.last_seen_at)}</td>
              <td>{g.version ?? "—"}</td>
            </tr>
          ))}
        </DataTable>
      )}
      <h2>Gateway tokens</h2>
      {tokens.data && tokens.data.data.length === 0 ? (
        <EmptyState title="No gateway tokens">
          A gateway enrolls with a token: create one with New gateway token.
        </EmptyState>
      ) : (
        <DataTable actions headers={["Name", "Token", "Created", "Status"]}>
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
                  <ActionButton
                    label="Revoke"
                    confirm={`Revoke the gateway token ‘${t.name}’? Gateways using it disconnect at once.`}
                    run={async () => {
                      await api("DELETE", `/internal/gateway-tokens/${t.id}`);
                      tokens.reload();
                      gateways.reload();
                    }}
                    onError={setError}
                  />
                )}
              </td>
            </tr>
          ))}
        </DataTable>
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
          <SecretBox title="Gateway token created! Copy it now" secret={secret} noun="token" />
          <footer className="dialog-foot">
            <button type="button" className="primary" onClick={() => setSecret(undefined)}>
              Done
            </button>
          </footer>
        </Dialog>
      )}
    </PageSection>
  );
}

function NewTokenDialog(props: { onClose: () => void; onCreated: (secret: string) => void }) {
  const [name, setName] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [general, setGeneral] = useState<string | undefined>();
  return (
    <FormDialog
      title="New gateway token"
      onClose={props.onClose}
      error={general}
      label="Create"
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
    </FormDialog>
  );
}
