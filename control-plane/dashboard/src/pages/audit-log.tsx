import { useState } from "react";
import { api, qs, type AuditEntry, type Page } from "../api.js";
import { DataTable, useDebounced } from "../list.js";
import { EmptyState, ErrorBanner, PageSection, formatDate, useLoad } from "../ui.js";

/** Who did what to which resource, newest first; every filter runs on the server. */
export function AuditLogPage() {
  const [actor, setActor] = useState("");
  const [action, setAction] = useState("");
  const [target, setTarget] = useState("");
  const [since, setSince] = useState("");
  const [until, setUntil] = useState("");
  // Typed filters ask the server once the typing pauses, not at every keystroke.
  const typed = {
    actor: useDebounced(actor.trim()),
    action: useDebounced(action.trim()),
    target: useDebounced(target.trim()),
  };
  const log = useLoad(
    () =>
      api<Page<AuditEntry>>(
        "GET",
        `/internal/audit-logs${qs({
          actor: typed.actor,
          action: typed.action,
          target_id: typed.target,
          since: since ? new Date(since).toISOString() : undefined,
          until: until ? new Date(until).toISOString() : undefined,
          limit: 500,
        })}`,
      ),
    [typed.actor, typed.action, typed.target, since, until],
  );
  const rows = log.data?.data ?? [];
  return (
    <PageSection
      crumb="Insights"
      title="Audit log"
      intro="Every change made through the admin API, with the actor who made it. Secrets never appear here."
    >
      <div className="toolbar wrap">
        <Filter id="f-actor" label="Actor" value={actor} onChange={setActor} placeholder="master_key" />
        <Filter id="f-action" label="Action" value={action} onChange={setAction} placeholder="api_key.rotate" />
        <Filter id="f-target" label="Target id" value={target} onChange={setTarget} placeholder="ak_…" />
        <Filter id="f-since" label="From" value={since} onChange={setSince} type="datetime-local" />
        <Filter id="f-until" label="To" value={until} onChange={setUntil} type="datetime-local" />
      </div>
      <ErrorBanner error={log.error} />
      {log.data && rows.length === 0 ? (
        <EmptyState title="Nothing recorded for these filters">
          Clear a filter, or make a change (create a key, a team or a user) and it shows up here.
        </EmptyState>
      ) : (
        <DataTable className="audit" headers={["Time", "Actor", "Action", "Target"]}>
          {rows.map((r) => (
            <tr key={r.id}>
              <td className="nowrap">{formatDate(r.at)}</td>
              <td>{r.actor}</td>
              <td>
                <code>{r.action}</code>
              </td>
              <td>
                <span className="muted">{r.target_type}</span> <code>{r.target_id}</code>
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </PageSection>
  );
}

function Filter(props: {
  id: string;
  label: string;
  value: string;
  onChange: (v: string) => void;
  placeholder?: string;
  type?: string;
}) {
  return (
    <span className="filter">
      <label htmlFor={props.id}>{props.label}</label>
      <input
        id={props.id}
        type={props.type ?? "search"}
        value={props.value}
        placeholder={props.placeholder}
        onChange={(e) => props.onChange(e.target.value)}
      />
    </span>
  );
}
