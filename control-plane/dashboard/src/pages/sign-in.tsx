import { useState, type FormEvent } from "react";
import { api, ApiError, type SessionInfo } from "../api.js";
import { Field } from "../ui.js";

/** Exchanges the master key for a session; the key is sent once and never kept in the browser. */
export function SignInPage(props: { onSignedIn: (s: SessionInfo) => void }) {
  const [credential, setCredential] = useState("");
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!credential.trim()) return setError("Enter the master key (PROXY_MASTER_KEY).");
    setBusy(true);
    setError(undefined);
    try {
      const s = await api<SessionInfo>("POST", "/internal/sessions", { credential });
      setCredential("");
      props.onSignedIn(s);
    } catch (err) {
      setError(
        err instanceof ApiError && err.code === "invalid_credential"
          ? "That key is not valid. Check PROXY_MASTER_KEY and try again."
          : (err as Error).message,
      );
    } finally {
      setBusy(false);
    }
  }
  return (
    <main className="signin">
      <form onSubmit={submit} className="card" noValidate>
        <h1>Sign in to Tollgate</h1>
        <p className="muted">
          Use the control plane's master key. It opens a session in this browser and is not stored.
        </p>
        <Field label="Master key" error={error}>
          {(id, describedBy) => (
            <input
              id={id}
              type="password"
              autoComplete="current-password"
              value={credential}
              aria-invalid={error ? true : undefined}
              aria-describedby={describedBy}
              onChange={(e) => setCredential(e.target.value)}
              autoFocus
            />
          )}
        </Field>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
