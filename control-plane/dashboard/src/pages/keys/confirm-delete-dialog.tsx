import { useState } from "react";
import { api, type ApiKey } from "../../api.js";
import { Dialog, ErrorBanner } from "../../ui.js";

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
