import type { Team } from "../api.js";
import { EntityListPage, type FieldSpec } from "./entity-form.js";

const FIELDS: FieldSpec[] = [
  { name: "name", label: "Name", kind: "text", required: true, column: "Name" },
  { name: "tpm_limit", label: "Tokens/min (whole team)", kind: "limit", column: "Tokens/min" },
  { name: "daily_token_limit", label: "Tokens/day (whole team)", kind: "limit", column: "Tokens/day" },
];

export function TeamsPage() {
  return (
    <EntityListPage<Team>
      noun="team"
      description="A team's limits are shared by every key of its members, across all gateways."
      emptyText="Create a team to share token limits between users, then add users to it on the Users page."
      fields={FIELDS}
    />
  );
}
