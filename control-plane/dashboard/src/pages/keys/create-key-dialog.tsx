import { useState, type FormEvent } from "react";
import { api, listAll, type Revealed, type User } from "../../api.js";
import {
  Dialog,
  ErrorBanner,
  Field,
  FormActions,
  NumberField,
  Options,
  Toggle,
  fieldErrors,
  useLoad,
} from "../../ui.js";
import { type Draft, EMPTY, EXPIRATIONS, KNOWN_FIELDS, PROVIDERS, type Tab, TAB_OF, toBody } from "./key-draft.js";
import { McpSettings } from "./mcp-tab.js";

export function CreateKeyDialog(props: { onClose: () => void; onCreated: (k: Revealed) => void }) {
  const [tab, setTab] = useState<Tab>("basic");
  const [d, setD] = useState<Draft>(EMPTY);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [general, setGeneral] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const users = useLoad(() => listAll<User>("/internal/users"), []);
  const set = <K extends keyof Draft>(k: K, v: Draft[K]) => setD((x) => ({ ...x, [k]: v }));

  async function submit(e: FormEvent) {
    e.preventDefault();
    const built = toBody(d);
    if ("errors" in built) {
      setErrors(built.errors);
      setTab(TAB_OF[Object.keys(built.errors)[0]!] ?? "basic");
      return;
    }
    setBusy(true);
    setErrors({});
    setGeneral(undefined);
    try {
      const key = await api<Revealed>("POST", "/internal/api-keys", built.body);
      if (d.ephemeral) {
        const t = await api<{ token: string; expires_at: string }>(
          "POST",
          `/internal/api-keys/${key.id}/ephemeral-tokens`,
          { ttl_seconds: built.ttl },
        );
        props.onCreated({ ...key, key: t.token });
      } else {
        props.onCreated(key);
      }
    } catch (err) {
      const fe = fieldErrors(err, KNOWN_FIELDS);
      setErrors(fe.fields);
      setGeneral(fe.general);
      const first = Object.keys(fe.fields)[0];
      if (first) setTab(TAB_OF[first] ?? "basic");
    } finally {
      setBusy(false);
    }
  }

  const tabButton = (t: Tab, label: string) => (
    <button
      type="button"
      role="tab"
      id={`tab-${t}`}
      aria-selected={tab === t}
      aria-controls={`panel-${t}`}
      tabIndex={tab === t ? 0 : -1}
      className={tab === t ? "tab active" : "tab"}
      onClick={() => setTab(t)}
      onKeyDown={(e) => {
        const order: Tab[] = ["basic", "advanced", "mcp"];
        const i = order.indexOf(t);
        if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
          const next = order[(i + (e.key === "ArrowRight" ? 1 : 2)) % 3]!;
          setTab(next);
          document.getElementById(`tab-${next}`)?.focus();
        }
      }}
    >
      {label}
      {Object.keys(errors).some((f) => (TAB_OF[f] ?? "basic") === t) && <span className="tab-error"> (!)</span>}
    </button>
  );

  const noUsers = users.data && users.data.length === 0;
  return (
    <Dialog title="Create Key" onClose={props.onClose} wide testId="create-key">
      <form onSubmit={submit} noValidate>
        <div role="tablist" aria-label="Key settings" className="tabs">
          {tabButton("basic", "Basic")}
          {tabButton("advanced", "Advanced")}
          {tabButton("mcp", "MCP")}
        </div>
        <div role="tabpanel" id="panel-basic" aria-labelledby="tab-basic" hidden={tab !== "basic"} className="panel">
          <Field label="Key Name" error={errors.name} hint="What you'll see in logs (e.g. Production API).">
            {(id, db) => (
              <input
                id={id}
                value={d.name}
                aria-describedby={db}
                aria-invalid={!!errors.name || undefined}
                onChange={(e) => set("name", e.target.value)}
                required
              />
            )}
          </Field>
          <Field
            label="Owner (Create Key for User)"
            error={errors.user_id ?? (noUsers ? "No users yet: add one on the Users page first." : undefined)}
          >
            {(id, db) => (
              <select
                id={id}
                value={d.user_id}
                aria-describedby={db}
                aria-invalid={!!errors.user_id || undefined}
                onChange={(e) => set("user_id", e.target.value)}
              >
                <option value="">Choose a member…</option>
                {users.data?.map((u) => (
                  <option key={u.id} value={u.id}>
                    {u.external_id}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Expiration" error={errors.expires_at}>
            {(id, db) => (
              <select
                id={id}
                value={d.expires_at}
                aria-describedby={db}
                onChange={(e) => set("expires_at", e.target.value)}
              >
                <Options options={EXPIRATIONS} />
              </select>
            )}
          </Field>
          <div className="row">
            {(
              [
                ["rpm_limit", "Requests/min"],
                ["tpm_limit", "Tokens/min"],
              ] as const
            ).map(([field, label]) => (
              <NumberField
                key={field}
                label={label}
                error={errors[field]}
                value={d[field]}
                onChange={(v) => set(field, v)}
                placeholder="No limit"
              />
            ))}
          </div>
          <NumberField
            label="Budget ($)"
            error={errors.budget_usd}
            hint="Hard USD cap; requests are blocked when exceeded."
            inputMode="decimal"
            value={d.budget_usd}
            onChange={(v) => set("budget_usd", v)}
            placeholder="No budget"
          />
          {d.budget_usd.trim() !== "" && (
            <Field
              label="Budget Alert Thresholds (%)"
              error={errors.budget_alert_thresholds}
              hint="Comma-separated percentages (e.g. 50,80,100)."
            >
              {(id, db) => (
                <input
                  id={id}
                  value={d.budget_alert_thresholds}
                  aria-describedby={db}
                  aria-invalid={!!errors.budget_alert_thresholds || undefined}
                  onChange={(e) => set("budget_alert_thresholds", e.target.value)}
                  placeholder="50,80,100"
                />
              )}
            </Field>
          )}
          <Toggle
            label="Ephemeral Token (issue a short-lived delegated token instead of a standard key)"
            checked={d.ephemeral}
            onChange={(v) => set("ephemeral", v)}
          />
          {d.ephemeral && (
            <NumberField
              label="Expires In (seconds)"
              error={errors.ttl_seconds}
              value={d.ttl_seconds}
              onChange={(v) => set("ttl_seconds", v)}
            />
          )}
          <fieldset className={errors.allowed_providers ? "providers invalid" : "providers"}>
            <legend>Allowed Providers</legend>
            <small className="hint">All on = no restriction.</small>
            {PROVIDERS.map((p) => (
              <Toggle
                key={p}
                label={p}
                checked={!!d.providers[p]}
                onChange={(v) => set("providers", { ...d.providers, [p]: v })}
              />
            ))}
            {errors.allowed_providers && (
              <small className="error" role="alert">
                {errors.allowed_providers}
              </small>
            )}
          </fieldset>
        </div>
        <div
          role="tabpanel"
          id="panel-advanced"
          aria-labelledby="tab-advanced"
          hidden={tab !== "advanced"}
          className="panel"
        >
          <Field
            label="Allowed Models"
            error={errors.allowed_models}
            hint="Comma-separated allow-list (gpt-4o, claude-3.5-sonnet). Empty = all enabled models."
          >
            {(id, db) => (
              <input
                id={id}
                value={d.allowed_models}
                aria-describedby={db}
                aria-invalid={!!errors.allowed_models || undefined}
                onChange={(e) => set("allowed_models", e.target.value)}
              />
            )}
          </Field>
          <Field
            label="IP Allowlist"
            error={errors.ip_allowlist}
            hint="CIDRs or IPs (192.168.1.0/24, 10.0.0.1). Empty = any IP."
          >
            {(id, db) => (
              <input
                id={id}
                value={d.ip_allowlist}
                aria-describedby={db}
                aria-invalid={!!errors.ip_allowlist || undefined}
                onChange={(e) => set("ip_allowlist", e.target.value)}
              />
            )}
          </Field>
          <Field
            label="Metadata (JSON)"
            error={errors.metadata}
            hint='Arbitrary tags echoed back in logs (e.g. {"team": "backend", "env": "production"}).'
          >
            {(id, db) => (
              <textarea
                id={id}
                rows={4}
                className="mono"
                value={d.metadata}
                aria-describedby={db}
                aria-invalid={!!errors.metadata || undefined}
                onChange={(e) => set("metadata", e.target.value)}
              />
            )}
          </Field>
        </div>
        <div role="tabpanel" id="panel-mcp" aria-labelledby="tab-mcp" hidden={tab !== "mcp"} className="panel">
          <McpSettings d={d} set={set} errors={errors} />
        </div>
        <ErrorBanner error={general} />
        <FormActions onCancel={props.onClose} label="Create Key" busyLabel="Creating…" busy={busy} />
      </form>
    </Dialog>
  );
}
