import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from "react";
import { ApiError } from "./api.js";

/** A modal on the native <dialog>: focus trapping, Escape and the backdrop come from the browser. */
export function Dialog(props: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  wide?: boolean;
  testId?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current!;
    if (!d.open) d.showModal();
    return () => d.close();
  }, []);
  return (
    <dialog
      ref={ref}
      className={props.wide ? "dialog wide" : "dialog"}
      aria-labelledby={titleId}
      data-testid={props.testId}
      onCancel={(e) => {
        e.preventDefault();
        props.onClose();
      }}
    >
      <header className="dialog-head">
        <h2 id={titleId}>{props.title}</h2>
        <button type="button" className="icon" aria-label="Close" onClick={props.onClose}>
          ×
        </button>
      </header>
      {props.children}
    </dialog>
  );
}

/** A labelled form control with its error (from the form or the API) right below it. */
export function Field(props: {
  label: string;
  error?: string | undefined;
  hint?: string;
  children: (id: string, describedBy: string | undefined) => ReactNode;
}) {
  const id = useId();
  const errId = `${id}-error`;
  const hintId = `${id}-hint`;
  const describedBy = [props.error ? errId : "", props.hint ? hintId : ""].filter(Boolean).join(" ") || undefined;
  return (
    <div className={props.error ? "field invalid" : "field"}>
      <label htmlFor={id}>{props.label}</label>
      {props.children(id, describedBy)}
      {props.hint && (
        <small id={hintId} className="hint">
          {props.hint}
        </small>
      )}
      {props.error && (
        <small id={errId} className="error" role="alert">
          {props.error}
        </small>
      )}
    </div>
  );
}

/** A labelled text box for a number: a numeric keyboard on phones, aria-invalid while it shows an error. */
export function NumberField(props: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  error?: string | undefined;
  hint?: string;
  /** What an empty box means ("No limit"). */
  placeholder?: string;
  /** "decimal" for amounts with cents; whole numbers otherwise. */
  inputMode?: "numeric" | "decimal";
}) {
  return (
    <Field label={props.label} error={props.error} hint={props.hint}>
      {(id, db) => (
        <input
          id={id}
          inputMode={props.inputMode ?? "numeric"}
          value={props.value}
          aria-describedby={db}
          aria-invalid={!!props.error || undefined}
          onChange={(e) => props.onChange(e.target.value)}
          placeholder={props.placeholder}
        />
      )}
    </Field>
  );
}

export function Toggle(props: { label: string; checked: boolean; onChange: (v: boolean) => void }) {
  return (
    <label className="toggle">
      <input type="checkbox" role="switch" checked={props.checked} onChange={(e) => props.onChange(e.target.checked)} />
      <span>{props.label}</span>
    </label>
  );
}

/** Copies text; the label flashes to "Copied!" for 2 seconds. */
export function CopyButton(props: { text: string; label?: string; ariaLabel?: string; className?: string }) {
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    if (!copied) return;
    const t = setTimeout(() => setCopied(false), 2000);
    return () => clearTimeout(t);
  }, [copied]);
  return (
    <button
      type="button"
      className={props.className ?? "secondary"}
      aria-label={props.ariaLabel}
      onClick={async (e) => {
        e.stopPropagation();
        await copyText(props.text);
        setCopied(true);
      }}
    >
      {copied ? "Copied!" : (props.label ?? "Copy")}
    </button>
  );
}

async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Plain-HTTP origins have no async clipboard: fall back to a selection copy.
    const ta = document.createElement("textarea");
    ta.value = text;
    document.body.append(ta);
    ta.select();
    document.execCommand("copy");
    ta.remove();
  }
}

/** The main action of a page or an empty list: one primary button. */
export interface Action {
  label: string;
  onClick: () => void;
}

function ActionLink(props: { action: Action | undefined }) {
  if (!props.action) return null;
  return (
    <button type="button" className="primary" onClick={props.action.onClick}>
      {props.action.label}
    </button>
  );
}

export function EmptyState(props: { title: string; children: ReactNode; action?: Action }) {
  return (
    <div className="empty" role="status">
      <h3>{props.title}</h3>
      <p>{props.children}</p>
      <ActionLink action={props.action} />
    </div>
  );
}

export function Spinner(props: { label?: string }) {
  return (
    <div className="spinner" role="status" aria-live="polite">
      <span className="dot" aria-hidden="true" />
      {props.label ?? "Loading…"}
    </div>
  );
}

export function ErrorBanner(props: { error: unknown }) {
  if (!props.error) return null;
  const message = props.error instanceof Error ? props.error.message : String(props.error);
  return (
    <div className="banner error" role="alert">
      {message}
    </div>
  );
}

/** Splits an API error into a per-field map (shown beside the field) and a general message. */
export function fieldErrors(
  err: unknown,
  known: readonly string[],
): { fields: Record<string, string>; general: string | undefined } {
  if (err instanceof ApiError && err.field) {
    const root = err.field.split(".")[0]!;
    if (known.includes(root)) {
      const prefix = `${err.field}: `;
      return {
        fields: { [root]: err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message },
        general: undefined,
      };
    }
  }
  return { fields: {}, general: err ? (err instanceof Error ? err.message : String(err)) : undefined };
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

export function formatNumber(n: number | null | undefined): string {
  return n === null || n === undefined ? "—" : n.toLocaleString();
}

export function StatusBadge(props: { status: string }) {
  return <span className={`badge ${props.status}`}>{props.status}</span>;
}

/** Loads once on mount and whenever `deps` change; `reload` refetches. */
export function useLoad<T>(
  load: () => Promise<T>,
  deps: unknown[],
): { data: T | undefined; error: unknown; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({
    data: undefined,
    error: undefined,
    loading: true,
  });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, error: undefined, loading: false }),
      (error: unknown) => live && setState((s) => ({ data: s.data, error, loading: false })),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/** A page: breadcrumb, title (which names the section), one line of context, the page's main action, then the page. */
export function PageSection(props: {
  crumb: string;
  title: string;
  intro: ReactNode;
  action?: Action;
  children: ReactNode;
}) {
  const titleId = useId();
  return (
    <section aria-labelledby={titleId}>
      <div className="page-head">
        <div>
          <p className="crumb">{props.crumb}</p>
          <h1 id={titleId}>{props.title}</h1>
          <p className="muted">{props.intro}</p>
        </div>
        <ActionLink action={props.action} />
      </div>
      {props.children}
    </section>
  );
}

/** Cancel and submit at the foot of a form; `inline` forms sit inside a dialog that has its own footer. */
export function FormActions(props: {
  onCancel: () => void;
  label: string;
  busyLabel?: string;
  busy?: boolean;
  inline?: boolean;
}) {
  const buttons = (
    <>
      <button type="button" className="secondary" onClick={props.onCancel}>
        Cancel
      </button>
      <button type="submit" className="primary" disabled={props.busy}>
        {props.busy && props.busyLabel ? props.busyLabel : props.label}
      </button>
    </>
  );
  return props.inline ? (
    <div className="dialog-foot">{buttons}</div>
  ) : (
    <footer className="dialog-foot">{buttons}</footer>
  );
}

/** A dialog holding one form: its fields, the banner for the error no field owns, then Cancel and submit. */
export function FormDialog(props: {
  title: string;
  onClose: () => void;
  onSubmit: (e: FormEvent) => void;
  error: string | undefined;
  label: string;
  busyLabel?: string;
  busy?: boolean;
  children: ReactNode;
}) {
  return (
    <Dialog title={props.title} onClose={props.onClose}>
      <form noValidate onSubmit={props.onSubmit}>
        {props.children}
        <ErrorBanner error={props.error} />
        <FormActions onCancel={props.onClose} label={props.label} busyLabel={props.busyLabel} busy={props.busy} />
      </form>
    </Dialog>
  );
}

/** A secret shown once, with its copy button and the warning that it will not be shown again. */
export function SecretBox(props: { title: string; secret: string; noun: string; testId?: string }) {
  return (
    <div className="success-box">
      <p className="success-title">{props.title}</p>
      <pre className="secret" data-testid={props.testId} tabIndex={0}>
        {props.secret}
      </pre>
      <CopyButton text={props.secret} label="Copy" />
      <p className="warning">This {props.noun} will not be shown again. Make sure to save it securely.</p>
    </div>
  );
}

/** The options of a select, as [value, label] pairs. */
export function Options(props: { options: ReadonlyArray<readonly [string, string]> }) {
  return props.options.map(([value, label]) => (
    <option key={value} value={value}>
      {label}
    </option>
  ));
}
