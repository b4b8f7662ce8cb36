import { useMemo, useState, type FormEvent } from "react";
import { api, type ApiKey, type FormBody } from "../../api.js";
import { ErrorBanner, Field, FormActions, NumberField, fieldErrors } from "../../ui.js";
import { list, positiveInt } from "./key-draft.js";

export function EditKeyForm(props: { apiKey: ApiKey; onCancel: () => void; onSaved: (k: ApiKey) => void }) {
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
        <NumberField
          label="Requests/min"
          error={errors.rpm_limit}
          value={rpm}
          onChange={setRpm}
          placeholder="No limit"
        />
        <NumberField label="Tokens/min" error={errors.tpm_limit} value={tpm} onChange={setTpm} placeholder="No limit" />
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
