import { useState, type FormEvent } from "react";
import { api, type ApiKey, type Revealed } from "../../api.js";
import { ErrorBanner, FormActions, NumberField, fieldErrors } from "../../ui.js";

export function RotateForm(props: { apiKey: ApiKey; onCancel: () => void; onRotated: (k: Revealed) => void }) {
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
      <NumberField
        label="Grace period (seconds)"
        error={errors.grace_seconds}
        hint="0 = the old key stops at once."
        value={grace}
        onChange={setGrace}
      />
      <ErrorBanner error={general} />
      <FormActions inline onCancel={props.onCancel} label="Rotate Key" busyLabel="Rotating…" busy={busy} />
    </form>
  );
}

export function EphemeralForm(props: { onCancel: () => void; onIssue: (ttl: number) => void; busy: boolean }) {
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
      <NumberField
        label="Expires In (seconds)"
        error={error}
        hint="A short-lived delegated token; it never outlives the key."
        value={ttl}
        onChange={setTtl}
      />
      <FormActions inline onCancel={props.onCancel} label="Issue token" busy={props.busy} />
    </form>
  );
}
