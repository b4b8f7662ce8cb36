import { useEffect, useMemo, useState, type FormEvent } from "react";
import { api, listAll, type ApiKey, type FormBody, type Revealed, type User } from "../api.js";
import {
  Dialog,
  ErrorBanner,
  Field,
  FormActions,
  Options,
  SecretBox,
  StatusBadge,
  Toggle,
  fieldErrors,
  formatDate,
  formatNumber,
  useLoad,
} from "../ui.js";

export const PROVIDERS = ["openai", "anthropic", "azure-openai", "gemini"] as const;
const EXPIRATIONS = [
  ["never", "Never"],
  ["30d", "30 days"],
  ["60d", "60 days"],
  ["90d", "90 days"],
  ["180d", "180 days"],
  ["1y", "1 year"],
] as const;
const MCP_MODES = [
  ["allow_all", "Allow All"],
  ["deny_all", "Deny All"],
  ["allow_list", "Allow List"],
  ["deny_list", "Deny List"],
] as const;

type Tab = "basic" | "advanced" | "mcp";
const TAB_OF: Record<string, Tab> = {
  allowed_models: "advanced",
  ip_allowlist: "advanced",
  metadata: "advanced",
  mcp_enabled: "mcp",
  mcp_access_mode: "mcp",
  mcp_servers: "mcp",
  mcp_tools: "mcp",
};
const KNOWN_FIELDS = [
  "name",
  "user_id",
  "expires_at",
  "rpm_limit",
  "tpm_limit",
  "budget_usd",
  "budget_alert_thresholds",
  "allowed_providers",
  "ttl_seconds",
  "allowed_models",
  "ip_allowlist",
  "metadata",
  "mcp_enabled",
  "mcp_access_mode",
  "mcp_servers",
  "mcp_tools",
] as const;

const list = (s: string) =>
  s
    .split(",")
    .map((v) => v.trim())
    .filter(Boolean);

/** A whole positive number, or undefined for an empty box; throws a message for anything else. */
function positiveInt(raw: string, label = "a whole number of at least 1"): number | undefined {
  if (raw.trim() === "") return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`must be ${label}`);
  return n;
}

interface Draft {
  name: string;
  user_id: string;
  expires_at: string;
  rpm_limit: string;
  tpm_limit: string;
  budget_usd: string;
  budget_alert_thresholds: string;
  ephemeral: boolean;
  ttl_seconds: string;
  providers: Record<string, boolean>;
  allowed_models: string;
  ip_allowlist: string;
  metadata: string;
  mcp_enabled: boolean;
  mcp_access_mode: (typeof MCP_MODES)[number][0];
  mcp_servers: string;
  mcp_tools: Record<string, string[]>;
}

const EMPTY: Draft = {
  name: "",
  user_id: "",
  expires_at: "never",
  rpm_limit: "",
  tpm_limit: "",
  budget_usd: "",
  budget_alert_thresholds: "",
  ephemeral: false,
  ttl_seconds: "3600",
  providers: Object.fromEntries(PROVIDERS.map((p) => [p, true])),
  allowed_models: "",
  ip_allowlist: "",
  metadata: "",
  mcp_enabled: false,
  mcp_access_mode: "allow_all",
  mcp_servers: "",
  mcp_tools: {},
};

/** The request body, or the form's own per-field errors (nothing is sent then). */
type CreateBody = FormBody<"/internal/api-keys", "post">;

function toBody(d: Draft): { body: CreateBody; ttl: number } | { errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const body: CreateBody = { name: d.name.trim(), user_id: d.user_id };
  const take = (field: keyof CreateBody, fn: () => unknown) => {
    try {
      const v = fn();
      if (v !== undefined) body[field] = v;
    } catch (e) {
      errors[field] = (e as Error).message;
    }
  };
  if (!body.name) errors.name = "is required";
  if (!d.user_id) errors.user_id = "pick the member who will own the key";
  if (d.expires_at !== "never") body.expires_at = d.expires_at;
  take("rpm_limit", () => positiveInt(d.rpm_limit));
  take("tpm_limit", () => positiveInt(d.tpm_limit));
  take("budget_usd", () => {
    if (d.budget_usd.trim() === "") return undefined;
    const n = Number(d.budget_usd);
    if (!Number.isFinite(n) || n <= 0) throw new Error("must be an amount in USD above 0");
    return n;
  });
  if (body.budget_usd !== undefined) {
    take("budget_alert_thresholds", () => {
      const t = list(d.budget_alert_thresholds).map(Number);
      if (t.some((v) => !Number.isInteger(v) || v < 1 || v > 1000))
        throw new Error("must be whole percentages, e.g. 50,80,100");
      return t.length ? t : undefined;
    });
  }
  const enabled = PROVIDERS.filter((p) => d.providers[p]);
  if (enabled.length === 0) errors.allowed_providers = "turn at least one provider on (all on = no restriction)";
  else if (enabled.length < PROVIDERS.length) body.allowed_providers = enabled;
  const models = list(d.allowed_models);
  if (models.length) body.allowed_models = models;
  const ips = list(d.ip_allowlist);
  if (ips.length) body.ip_allowlist = ips;
  take("metadata", () => {
    if (d.metadata.trim() === "") return undefined;
    let v: unknown;
    try {
      v = JSON.parse(d.metadata);
    } catch {
      throw new Error('must be valid JSON, e.g. {"team": "backend"}');
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("must be a JSON object");
    return v;
  });
  if (d.mcp_enabled) {
    body.mcp_enabled = true;
    body.mcp_access_mode = d.mcp_access_mode;
    const servers = list(d.mcp_servers);
    if (servers.length) body.mcp_servers = servers;
    const tools = Object.fromEntries(
      Object.entries(d.mcp_tools).filter(([s, t]) => servers.includes(s) && t.length > 0),
    );
    if (Object.keys(tools).length) body.mcp_tools = tools;
  }
  let ttl = 3600;
  if (d.ephemeral) {
    const n = Number(d.ttl_seconds);
    if (!Number.isInteger(n) || n < 60 || n > 86400)
      errors.ttl_seconds = "must be a whole number of seconds from 60 to 86400";
    else ttl = n;
  }
  return Object.keys(errors).length ? { errors } : { body, ttl };
}

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
            <Field label="Requests/min" error={errors.rpm_limit}>
              {(id, db) => (
                <input
                  id={id}
                  inputMode="numeric"
                  value={d.rpm_limit}
                  aria-describedby={db}
                  aria-invalid={!!errors.rpm_limit || undefined}
                  onChange={(e) => set("rpm_limit", e.target.value)}
                  placeholder="No limit"
                />
              )}
            </Field>
            <Field label="Tokens/min" error={errors.tpm_limit}>
              {(id, db) => (
                <input
                  id={id}
                  inputMode="numeric"
                  value={d.tpm_limit}
                  aria-describedby={db}
                  aria-invalid={!!errors.tpm_limit || undefined}
                  onChange={(e) => set("tpm_limit", e.target.value)}
                  placeholder="No limit"
                />
              )}
            </Field>
          </div>
          <Field label="Budget ($)" error={errors.budget_usd} hint="Hard USD cap; requests are blocked when exceeded.">
            {(id, db) => (
              <input
                id={id}
                inputMode="decimal"
                value={d.budget_usd}
                aria-describedby={db}
                aria-invalid={!!errors.budget_usd || undefined}
                onChange={(e) => set("budget_usd", e.target.value)}
                placeholder="No budget"
              />
            )}
          </Field>
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
            <Field label="Expires In (seconds)" error={errors.ttl_seconds}>
              {(id, db) => (
                <input
                  id={id}
                  inputMode="numeric"
                  value={d.ttl_seconds}
                  aria-describedby={db}
                  aria-invalid={!!errors.ttl_seconds || undefined}
                  onChange={(e) => set("ttl_seconds", e.target.value)}
                />
              )}
            </Field>
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

function McpSettings(props: {
  d: Draft;
  set: <K extends keyof Draft>(k: K, v: Draft[K]) => void;
  errors: Record<string, string>;
}) {
  const { d, set, errors } = props;
  const servers = list(d.mcp_servers);
  return (
    <>
      <Toggle
        label="MCP Enabled (off: this key cannot use any MCP server or tool)"
        checked={d.mcp_enabled}
        onChange={(v) => set("mcp_enabled", v)}
      />
      {d.mcp_enabled && (
        <>
          <Field label="MCP Access Mode" error={errors.mcp_access_mode}>
            {(id, db) => (
              <select
                id={id}
                value={d.mcp_access_mode}
                aria-describedby={db}
                onChange={(e) => set("mcp_access_mode", e.target.value as Draft["mcp_access_mode"])}
              >
                <Options options={MCP_MODES} />
              </select>
            )}
          </Field>
          {(d.mcp_access_mode === "allow_list" || d.mcp_access_mode === "deny_list") && (
            <Field
              label={d.mcp_access_mode === "allow_list" ? "Allowed MCP Servers" : "Denied MCP Servers"}
              error={errors.mcp_servers}
              hint="Comma-separated server names."
            >
              {(id, db) => (
                <input
                  id={id}
                  value={d.mcp_servers}
                  aria-describedby={db}
                  aria-invalid={!!errors.mcp_servers || undefined}
                  onChange={(e) => set("mcp_servers", e.target.value)}
                />
              )}
            </Field>
          )}
          {servers.length > 0 && (
            <ToolPicker
              servers={servers}
              tools={d.mcp_tools}
              onChange={(t) => set("mcp_tools", t)}
              error={errors.mcp_tools}
            />
          )}
        </>
      )}
    </>
  );
}

/** Per-server tool checkboxes, filtered by a search box; new tool names are added by hand. */
function ToolPicker(props: {
  servers: string[];
  tools: Record<string, string[]>;
  onChange: (t: Record<string, string[]>) => void;
  error?: string | undefined;
}) {
  const [query, setQuery] = useState("");
  const [known, setKnown] = useState<Record<string, string[]>>(props.tools);
  const [adding, setAdding] = useState<Record<string, string>>({});
  // Each registered server's own tools, asked through the control plane (GET /internal/mcp-servers/{id}/tools);
  // a server that cannot be asked keeps the names added by hand.
  const serverNames = props.servers.join("\n");
  useEffect(() => {
    let live = true;
    const wanted = serverNames.split("\n");
    api<{ data: Array<{ id: string; name: string }> }>("GET", "/internal/mcp-servers")
      .then(async (registered) => {
        for (const server of wanted) {
          const id = registered.data.find((s) => s.name === server)?.id;
          if (!id) continue;
          const tools = await api<{ data: Array<{ name: string }> }>("GET", `/internal/mcp-servers/${id}/tools`).catch(
            () => null,
          );
          if (live && tools)
            setKnown((k) => ({
              ...k,
              [server]: [...new Set([...(k[server] ?? []), ...tools.data.map((t) => t.name)])],
            }));
        }
      })
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [serverNames]);
  const toggle = (server: string, tool: string, on: boolean) => {
    const cur = new Set(props.tools[server] ?? []);
    if (on) cur.add(tool);
    else cur.delete(tool);
    props.onChange({ ...props.tools, [server]: [...cur] });
  };
  return (
    <fieldset className="tools">
      <legend>MCP Tools</legend>
      <label className="visually-hidden" htmlFor="tool-search">
        Search tools
      </label>
      <input
        id="tool-search"
        type="search"
        placeholder="Search tools"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
      />
      {props.servers.map((server) => (
        <div key={server} className="tool-server">
          <strong>{server}</strong>
          {(known[server] ?? [])
            .filter((t) => t.toLowerCase().includes(query.toLowerCase()))
            .map((tool) => (
              <label key={tool} className="check">
                <input
                  type="checkbox"
                  checked={(props.tools[server] ?? []).includes(tool)}
                  onChange={(e) => toggle(server, tool, e.target.checked)}
                />{" "}
                {tool}
              </label>
            ))}
          <div className="row tight">
            <label className="visually-hidden" htmlFor={`add-tool-${server}`}>
              Add a tool of {server}
            </label>
            <input
              id={`add-tool-${server}`}
              placeholder="tool name"
              value={adding[server] ?? ""}
              onChange={(e) => setAdding({ ...adding, [server]: e.target.value })}
            />
            <button
              type="button"
              className="secondary"
              onClick={() => {
                const tool = (adding[server] ?? "").trim();
                if (!tool) return;
                setKnown({ ...known, [server]: [...new Set([...(known[server] ?? []), tool])] });
                toggle(server, tool, true);
                setAdding({ ...adding, [server]: "" });
              }}
            >
              Add tool
            </button>
          </div>
        </div>
      ))}
      {props.error && (
        <small className="error" role="alert">
          {props.error}
        </small>
      )}
    </fieldset>
  );
}

/** The one-shot reveal of seed 004: the secret is in this component's memory only, until Done. */
export function RevealDialog(props: { revealed: Revealed; title: string; onDone: () => void }) {
  return (
    <Dialog title={props.title} onClose={props.onDone} testId="reveal">
      <SecretBox title="API Key created! Copy it now" secret={props.revealed.key} noun="key" testId="revealed-key" />
      <footer className="dialog-foot">
        <button type="button" className="primary" onClick={props.onDone}>
          Done
        </button>
      </footer>
    </Dialog>
  );
}

export function ConfirmDeleteDialog(props: { apiKey: ApiKey; onClose: () => void; onDeleted: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  return (
    <Dialog title="Delete API Key" onClose={props.onClose} testId="confirm-delete">
      <p>Are you sure you want to delete ‘{props.apiKey.name}’? This action cannot be undone.</p>
      <ErrorBanner error={error} />
      <footer className="dialog-foot">
        <button type="button" className="secondary" onClick={props.onClose} autoFocus>
          Cancel
        </button>
        <button
          type="button"
          className="danger"
          disabled={busy}
          onClick={async () => {
            setBusy(true);
            try {
              await api("DELETE", `/internal/api-keys/${props.apiKey.id}`);
              props.onDeleted();
            } catch (err) {
              setError(err);
              setBusy(false);
            }
          }}
        >
          {busy ? "Deleting…" : "Delete"}
        </button>
      </footer>
    </Dialog>
  );
}

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

function EditKeyForm(props: { apiKey: ApiKey; onCancel: () => void; onSaved: (k: ApiKey) => void }) {
  const k = props.apiKey;
  const [name, setName] = useState(k.name);
  const [rpm, setRpm] = useState(k.rpm_limit?.toString() ?? "");
  const [tpm, setTpm] = useState(k.tpm_limit?.toString() ?? "");
  const [servers, setServers] = useState(k.mcp_servers.join(", "));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [general, setGeneral] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const fields = useMemo(() => ["name", "rpm_limit", "tpm_limit", "mcp_servers"], []);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const errs: Record<string, string> = {};
    const body: FormBody<"/internal/api-keys/{id}", "patch"> = {};
    if (!name.trim()) errs.name = "is required";
    else body.name = name.trim();
    for (const [field, raw] of [
      ["rpm_limit", rpm],
      ["tpm_limit", tpm],
    ] as const) {
      try {
        body[field] = positiveInt(raw) ?? null;
      } catch (err) {
        errs[field] = (err as Error).message;
      }
    }
    body.mcp_servers = list(servers);
    if (Object.keys(errs).length) return setErrors(errs);
    setBusy(true);
    try {
      props.onSaved(await api<ApiKey>("PATCH", `/internal/api-keys/${k.id}`, body));
    } catch (err) {
      const fe = fieldErrors(err, fields);
      setErrors(fe.fields);
      setGeneral(fe.general);
    } finally {
      setBusy(false);
    }
  }
  return (
    <form className="inline-form" onSubmit={submit} noValidate>
      <h3>Edit</h3>
      <Field label="Key Name" error={errors.name}>
        {(id, db) => <input id={id} value={name} aria-describedby={db} onChange={(e) => setName(e.target.value)} />}
      </Field>
      <div className="row">
        <Field label="Requests/min" error={errors.rpm_limit}>
          {(id, db) => (
            <input
              id={id}
              value={rpm}
              aria-describedby={db}
              inputMode="numeric"
              placeholder="No limit"
              onChange={(e) => setRpm(e.target.value)}
            />
          )}
        </Field>
        <Field label="Tokens/min" error={errors.tpm_limit}>
          {(id, db) => (
            <input
              id={id}
              value={tpm}
              aria-describedby={db}
              inputMode="numeric"
              placeholder="No limit"
              onChange={(e) => setTpm(e.target.value)}
            />
          )}
        </Field>
      </div>
      <Field label="MCP servers" error={errors.mcp_servers} hint="Comma-separated server names.">
        {(id, db) => (
          <input id={id} value={servers} aria-describedby={db} onChange={(e) => setServers(e.target.value)} />
        )}
      </Field>
      <ErrorBanner error={general} />
      <FormActions inline onCancel={props.onCancel} label="Save" busyLabel="Saving…" busy={busy} />
    </form>
  );
}

function RotateForm(props: { apiKey: ApiKey; onCancel: () => void; onRotated: (k: Revealed) => void }) {
  const [grace, setGrace] = useState("0");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [general, setGeneral] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  async function submit(e: FormEvent) {
    e.preventDefault();
    const n = Number(grace || "0");
    if (!Number.isInteger(n) || n < 0 || n > 604800)
      return setErrors({ grace_seconds: "must be a whole number of seconds from 0 to 604800 (7 days)" });
    setBusy(true);
    try {
      props.onRotated(
        await api<Revealed>("POST", `/internal/api-keys/${props.apiKey.id}/rotate`, n > 0 ? { grace_seconds: n } : {}),
      );
    } catch (err) {
      const fe = fieldErrors(err, ["grace_seconds"]);
      setErrors(fe.fields);
      setGeneral(fe.general);
      setBusy(false);
    }
  }
  return (
    <form className="inline-form" onSubmit={submit} noValidate>
      <h3>Rotate Key</h3>
      <p className="muted">
        The old secret stops working {Number(grace) > 0 ? `after the grace period` : "immediately"}; the new one is
        shown once.
      </p>
      <Field label="Grace period (seconds)" error={errors.grace_seconds} hint="0 = the old key stops at once.">
        {(id, db) => (
          <input
            id={id}
            value={grace}
            inputMode="numeric"
            aria-describedby={db}
            onChange={(e) => setGrace(e.target.value)}
          />
        )}
      </Field>
      <ErrorBanner error={general} />
      <FormActions inline onCancel={props.onCancel} label="Rotate Key" busyLabel="Rotating…" busy={busy} />
    </form>
  );
}

function EphemeralForm(props: { onCancel: () => void; onIssue: (ttl: number) => void; busy: boolean }) {
  const [ttl, setTtl] = useState("3600");
  const [error, setError] = useState<string | undefined>();
  return (
    <form
      className="inline-form"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        const n = Number(ttl);
        if (!Number.isInteger(n) || n < 60 || n > 86400)
          return setError("must be a whole number of seconds from 60 to 86400");
        setError(undefined);
        props.onIssue(n);
      }}
    >
      <h3>Ephemeral Token</h3>
      <Field
        label="Expires In (seconds)"
        error={error}
        hint="A short-lived delegated token; it never outlives the key."
      >
        {(id, db) => (
          <input
            id={id}
            value={ttl}
            inputMode="numeric"
            aria-describedby={db}
            onChange={(e) => setTtl(e.target.value)}
          />
        )}
      </Field>
      <FormActions inline onCancel={props.onCancel} label="Issue token" busy={props.busy} />
    </form>
  );
}
