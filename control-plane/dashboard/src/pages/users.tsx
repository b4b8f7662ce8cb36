import { listAll, type Team, type User } from "../api.js";
import { useLoad } from "../ui.js";
import { EntityListPage, type FieldSpec } from "./entity-form.js";

export function UsersPage() {
  const teams = useLoad(() => listAll<Team>("/internal/teams"), []);
  const teamOptions = (teams.data ?? []).map((t): [string, string] => [t.id, t.name]);
  const fields: FieldSpec[] = [
    { name: "external_id", label: "External id (e.g. email)", kind: "text", required: true, column: "External id" },
    { name: "team_id", label: "Team", kind: "select", options: [["", "No team"], ...teamOptions], column: "Team" },
    { name: "rpm_limit", label: "Requests/min (all the user's keys)", kind: "limit", column: "Requests/min" },
    { name: "tpm_limit", label: "Tokens/min (all the user's keys)", kind: "limit", column: "Tokens/min" },
    { name: "daily_token_limit", label: "Tokens/day (all the user's keys)", kind: "limit", column: "Tokens/day" },
  ];
  return (
    <EntityListPage<User>
      noun="user"
      description="Organization members; every API key belongs to one."
      emptyText="Create a user, then give them a key on the API keys page."
      fields={fields}
    />
  );
}
