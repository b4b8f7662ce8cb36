import { useState, type FormEvent } from "react";
import { api } from "../api.js";
import { Dialog, ErrorBanner, Field, fieldErrors } from "../ui.js";

export interface FieldSpec {
  name: string;
  label: string;
  kind: "text" | "limit" | "select";
  options?: Array<[string, string]>;
  required?: boolean;
  hint?: string;
}

/**
 * Create/edit dialog for teams and users: empty limit boxes mean "no limit" (null),
 * the form checks what it can, and the API's field-named errors land beside their field.
 */
export function EntityDialog(props: {
  title: string;
  fields: FieldSpec[];
  initial: Record<string, string>;
  method: "POST" | "PATCH";
  path: string;
  onClose: () => void;
  onSaved: () => void;
}) {
  const [values, setValues] = useState(props.initial);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [general, setGeneral] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  async function submit(e: FormEvent) {
    e.preventDefault();
    const body: Record<string, unknown> = {};
    const errs: Record<string, string> = {};
    for (const f of props.fields) {
      const raw = (values[f.name] ?? "").trim();
      if (f.kind === "limit") {
        if (raw === "") body[f.name] = null;
        else if (!/^\d+$/.test(raw) || Number(raw) < 1) errs[f.name] = "must be a whole number of at least 1, or empty for no limit";
        else body[f.name] = Number(raw);
      } else if (f.kind === "select") {
        body[f.name] = raw === "" ? null : raw;
      } else {
        if (f.required && raw === "") errs[f.name] = "is required";
        else body[f.name] = raw;
      }
    }
    if (Object.keys(errs).length) return setErrors(errs);
    setBusy(true);
    setErrors({});
    setGeneral(undefined);
    try {
      await api(props.method, props.path, body);
      props.onSaved();
    } catch (err) {
      const fe = fieldErrors(err, props.fields.map((f) => f.name));
      setErrors(fe.fields);
      setGeneral(fe.general);
      setBusy(false);
    }
  }
  return (
    <Dialog title={props.title} onClose={props.onClose}>
      <form onSubmit={submit} noValidate>
        {props.fields.map((f) => (
          <Field key={f.name} label={f.label} error={errors[f.name]} {...(f.hint ? { hint: f.hint } : {})}>
            {(id, db) =>
              f.kind === "select" ? (
                <select id={id} aria-describedby={db} value={values[f.name] ?? ""} onChange={(e) => setValues({ ...values, [f.name]: e.target.value })}>
                  {f.options!.map(([v, l]) => (
                    <option key={v} value={v}>
                      {l}
                    </option>
                  ))}
                </select>
              ) : (
                <input
                  id={id}
                  aria-describedby={db}
                  aria-invalid={errors[f.name] ? true : undefined}
                  inputMode={f.kind === "limit" ? "numeric" : undefined}
                  placeholder={f.kind === "limit" ? "No limit" : undefined}
                  value={values[f.name] ?? ""}
                  onChange={(e) => setValues({ ...values, [f.name]: e.target.value })}
                />
              )
            }
          </Field>
        ))}
        <ErrorBanner error={general} />
        <footer className="dialog-foot">
          <button type="button" className="secondary" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Saving…" : "Save"}
          </button>
        </footer>
      </form>
    </Dialog>
  );
}

export function limitText(n: number | null): string {
  return n === null ? "No limit" : n.toLocaleString();
}
