import { useState } from "react";
import { api, listAll, type Team, type User } from "../api.js";
import { EmptyState, ErrorBanner, formatDate, useLoad } from "../ui.js";
import { EntityDialog, limitText, type FieldSpec } from "./entity-form.js";

export function UsersPage() {
  const users = useLoad(() => listAll<User>("/internal/users"), []);
  const teams = useLoad(() => listAll<Team>("/internal/teams"), []);
  const [editing, setEditing] = useState<User | "new" | undefined>();
  const [error, setError] = useState<unknown>();
  const teamName = (id: string | null) => (id ? (teams.data?.find((t) => t.id === id)?.name ?? id) : "—");
  const fields: FieldSpec[] = [
    { name: "external_id", label: "External id (e.g. email)", kind: "text", required: true },
    { name: "team_id", label: "Team", kind: "select", options: [["", "No team"], ...(teams.data ?? []).map((t): [string, string] => [t.id, t.name])] },
    { name: "rpm_limit", label: "Requests/min (all the user's keys)", kind: "limit" },
    { name: "tpm_limit", label: "Tokens/min (all the user's keys)", kind: "limit" },
    { name: "daily_token_limit", label: "Tokens/day (all the user's keys)", kind: "limit" },
  ];
  return (
    <section aria-labelledby="users-title">
      <div className="page-head">
        <div>
          <p className="crumb">People</p>
          <h1 id="users-title">Users</h1>
          <p className="muted">Organization members; every API key belongs to one.</p>
        </div>
        <button type="button" className="primary" onClick={() => setEditing("new")}>
          Create user
        </button>
      </div>
      <ErrorBanner error={users.error ?? error} />
      {users.data && users.data.length === 0 ? (
        <EmptyState title="No users yet">Create a user, then give them a key on the API keys page.</EmptyState>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>External id</th>
                <th>Team</th>
                <th>Requests/min</th>
                <th>Tokens/min</th>
                <th>Tokens/day</th>
                <th>Created</th>
                <th>
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {users.data?.map((u) => (
                <tr key={u.id}>
                  <td>{u.external_id}</td>
                  <td>{teamName(u.team_id)}</td>
                  <td className="num">{limitText(u.rpm_limit)}</td>
                  <td className="num">{limitText(u.tpm_limit)}</td>
                  <td className="num">{limitText(u.daily_token_limit)}</td>
                  <td>{formatDate(u.created_at)}</td>
                  <td className="nowrap">
                    <button type="button" className="secondary small" onClick={() => setEditing(u)}>
                      Edit
                    </button>{" "}
                    <button
                      type="button"
                      className="danger small"
                      onClick={async () => {
                        if (!window.confirm(`Delete the user ‘${u.external_id}’?`)) return;
                        try {
                          await api("DELETE", `/internal/users/${u.id}`);
                          users.reload();
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
          title={editing === "new" ? "Create user" : `Edit ${editing.external_id}`}
          fields={fields}
          initial={
            editing === "new"
              ? {}
              : {
                  external_id: editing.external_id,
                  team_id: editing.team_id ?? "",
                  rpm_limit: editing.rpm_limit?.toString() ?? "",
                  tpm_limit: editing.tpm_limit?.toString() ?? "",
                  daily_token_limit: editing.daily_token_limit?.toString() ?? "",
                }
          }
          method={editing === "new" ? "POST" : "PATCH"}
          path={editing === "new" ? "/internal/users" : `/internal/users/${editing.id}`}
          onClose={() => setEditing(undefined)}
          onSaved={() => {
            setEditing(undefined);
            users.reload();
          }}
        />
      )}
    </section>
  );
}
