import { useState } from "react";
import { api, listAll, type Team } from "../api.js";
import { EmptyState, ErrorBanner, formatDate, useLoad } from "../ui.js";
import { EntityDialog, limitText, type FieldSpec } from "./entity-form.js";

const FIELDS: FieldSpec[] = [
  { name: "name", label: "Name", kind: "text", required: true },
  { name: "tpm_limit", label: "Tokens/min (whole team)", kind: "limit" },
  { name: "daily_token_limit", label: "Tokens/day (whole team)", kind: "limit" },
];

export function TeamsPage() {
  const teams = useLoad(() => listAll<Team>("/internal/teams"), []);
  const [editing, setEditing] = useState<Team | "new" | undefined>();
  const [error, setError] = useState<unknown>();
  return (
    <section aria-labelledby="teams-title">
      <div className="page-head">
        <div>
          <p className="crumb">People</p>
          <h1 id="teams-title">Teams</h1>
          <p className="muted">A team's limits are shared by every key of its members, across all gateways.</p>
        </div>
        <button type="button" className="primary" onClick={() => setEditing("new")}>
          Create team
        </button>
      </div>
      <ErrorBanner error={teams.error ?? error} />
      {teams.data && teams.data.length === 0 ? (
        <EmptyState title="No teams yet">Create a team to share token limits between users, then add users to it on the Users page.</EmptyState>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Tokens/min</th>
                <th>Tokens/day</th>
                <th>Created</th>
                <th>
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {teams.data?.map((t) => (
                <tr key={t.id}>
                  <td>{t.name}</td>
                  <td className="num">{limitText(t.tpm_limit)}</td>
                  <td className="num">{limitText(t.daily_token_limit)}</td>
                  <td>{formatDate(t.created_at)}</td>
                  <td className="nowrap">
                    <button type="button" className="secondary small" onClick={() => setEditing(t)}>
                      Edit
                    </button>{" "}
                    <button
                      type="button"
                      className="danger small"
                      onClick={async () => {
                        if (!window.confirm(`Delete the team ‘${t.name}’?`)) return;
                        try {
                          await api("DELETE", `/internal/teams/${t.id}`);
                          teams.reload();
                        } catch (err) {
                          setError(err);
                        }
                      }}
                    >
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {editing && (
        <EntityDialog
          title={editing === "new" ? "Create team" : `Edit ${editing.name}`}
          fields={FIELDS}
          initial={editing === "new" ? {} : { name: editing.name, tpm_limit: editing.tpm_limit?.toString() ?? "", daily_token_limit: editing.daily_token_limit?.toString() ?? "" }}
          method={editing === "new" ? "POST" : "PATCH"}
          path={editing === "new" ? "/internal/teams" : `/internal/teams/${editing.id}`}
          onClose={() => setEditing(undefined)}
          onSaved={() => {
            setEditing(undefined);
            teams.reload();
          }}
        />
      )}
    </section>
  );
}
