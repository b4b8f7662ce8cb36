import { useState, type FormEvent } from "react";
import { api, listAll } from "../api.js";
import { ActionButton, DataTable } from "../list.js";
import {
  EmptyState,
  ErrorBanner,
  Field,
  FormDialog,
  Options,
  PageSection,
  fieldErrors,
  formatDate,
  useLoad,
} from "../ui.js";

export interface FieldSpec {
  name: string;
  label: string;
  kind: "text" | "limit" | "select";
  options?: Array<[string, string]>;
  required?: boolean;
  hint?: string;
  /** The header of the list column that shows this field, if any. */
  column?: string;
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
        else if (!/^\d+$/.test(raw) || Number(raw) < 1)
          errs[f.name] = "must be a whole number of at least 1, or empty for no limit";
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
      const fe = fieldErrors(
        err,
        props.fields.map((f) => f.name),
      );
      setErrors(fe.fields);
      setGeneral(fe.general);
      setBusy(false);
    }
  }
  return (
    <FormDialog
      title={props.title}
      onClose={props.onClose}
      onSubmit={submit}
      error={general}
      label="Save"
      busyLabel="Saving…"
      busy={busy}
    >
      {props.fields.map((f) => (
        <Field key={f.name} label={f.label} error={errors[f.name]} {...(f.hint ? { hint: f.hint } : {})}>
          {(id, db) =>
            f.kind === "select" ? (
              <select
                id={id}
                aria-describedby={db}
                value={values[f.name] ?? ""}
                onChange={(e) => setValues({ ...values, [f.name]: e.target.value })}
              >
                <Options options={f.options!} />
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
    </FormDialog>
  );
}

export function limitText(n: number | null): string {
  return n === null ? "No limit" : n.toLocaleString();
}

/**
 * The People pages (teams, users): a list with Edit and Delete per row and a create/edit dialog.
 * Every field with a `column` is also a column of the list; a row is named by its first field.
 */
export function EntityListPage<T extends { id: string; created_at: string }>(props: {
  noun: string;
  description: string;
  emptyText: string;
  fields: FieldSpec[];
}) {
  const title = `${props.noun[0]!.toUpperCase()}${props.noun.slice(1)}s`;
  const path = `/internal/${props.noun}s`;
  const rows = useLoad(() => listAll<T>(path), []);
  const [editing, setEditing] = useState<T | "new" | undefined>();
  const [error, setError] = useState<unknown>();
  const create = `Create ${props.noun}`;
  const columns = props.fields.filter((f) => f.column !== undefined);
  const name = (row: T) => String(values(row)[props.fields[0]!.name]);
  return (
    <PageSection
      crumb="People"
      title={title}
      intro={props.description}
      action={{ label: create, onClick: () => setEditing("new") }}
    >
      <ErrorBanner error={rows.error ?? error} />
      {rows.data && rows.data.length === 0 ? (
        <EmptyState title={`No ${props.noun}s yet`}>{props.emptyText}</EmptyState>
      ) : (
        <DataTable actions headers={[...columns.map((c) => c.column!), "Created"]}>
          {rows.data?.map((r) => (
            <tr key={r.id}>
              {columns.map((f) => (
                <td key={f.name} className={f.kind === "limit" ? "num" : undefined}>
                  {cellText(f, values(r)[f.name])}
                </td>
              ))}
              <td>{formatDate(r.created_at)}</td>
              <td className="nowrap">
                <button type="button" className="secondary small" onClick={() => setEditing(r)}>
                  Edit
                </button>{" "}
                <ActionButton
                  label="Delete"
                  confirm={`Delete the ${props.noun} ‘${name(r)}’?`}
                  run={async () => {
                    await api("DELETE", `${path}/${r.id}`);
                    rows.reload();
                  }}
                  onError={setError}
                />
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      {editing && (
        <EntityDialog
          title={editing === "new" ? create : `Edit ${name(editing)}`}
          fields={props.fields}
          initial={editing === "new" ? {} : formValues(props.fields, editing)}
          method={editing === "new" ? "POST" : "PATCH"}
          path={editing === "new" ? path : `${path}/${editing.id}`}
          onClose={() => setEditing(undefined)}
          onSaved={() => {
            setEditing(undefined);
            rows.reload();
          }}
        />
      )}
    </PageSection>
  );
}

function values(row: object): Record<string, unknown> {
  return row as Record<string, unknown>;
}

/** What a list cell shows: a limit as text, a select as its option's label (its raw value if no option has it). */
function cellText(f: FieldSpec, v: unknown): string {
  if (f.kind === "limit") return limitText((v as number | null) ?? null);
  if (f.kind === "select") return v ? (f.options?.find(([value]) => value === v)?.[1] ?? String(v)) : "—";
  return String(v);
}

/** A row as the text of its form's boxes: an empty box means null (no limit, no team). */
function formValues(fields: FieldSpec[], row: object): Record<string, string> {
  return Object.fromEntries(fields.map((f) => [f.name, values(row)[f.name]?.toString() ?? ""]));
}
