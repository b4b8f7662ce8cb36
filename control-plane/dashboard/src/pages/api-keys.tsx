import { useEffect, useState } from "react";
import { api, qs, type ApiKey, type KeyStatus, type Page, type Revealed } from "../api.js";
import { CopyButton, EmptyState, ErrorBanner, StatusBadge, formatDate, formatNumber, useLoad } from "../ui.js";
import { ConfirmDeleteDialog, CreateKeyDialog, KeyDetailDialog, RevealDialog } from "./key-dialogs.js";

type SortField = "name" | "owner" | "status" | "requests" | "created";
const PAGE_SIZE = 25;

/** Configuration → API keys: every list, filter and action of seed 004, paged by the server. */
export function ApiKeysPage() {
  const [searchInput, setSearchInput] = useState("");
  const [search, setSearch] = useState("");
  const [status, setStatus] = useState<"" | KeyStatus>("");
  const [sort, setSort] = useState<{ field: SortField; order: "asc" | "desc" }>({ field: "created", order: "desc" });
  // Cursors of the pages before this one, so Previous needs no offset.
  const [cursors, setCursors] = useState<Array<string | null>>([null]);
  const cursor = cursors[cursors.length - 1] ?? null;
  const [creating, setCreating] = useState(false);
  const [revealed, setRevealed] = useState<{ key: Revealed; title: string } | undefined>();
  const [detail, setDetail] = useState<ApiKey | undefined>();
  const [deleting, setDeleting] = useState<ApiKey | undefined>();

  // Search as you type, a moment after the last keystroke.
  useEffect(() => {
    const t = setTimeout(() => setSearch(searchInput.trim()), 250);
    return () => clearTimeout(t);
  }, [searchInput]);
  useEffect(() => setCursors([null]), [search, status, sort]);

  const list = useLoad(
    () =>
      api<Page<ApiKey>>(
        "GET",
        `/internal/api-keys${qs({ limit: PAGE_SIZE, search, status, sort: sort.field, order: sort.order, cursor })}`,
      ),
    [search, status, sort.field, sort.order, cursor],
  );
  const rows = list.data?.data ?? [];
  const filtered = search !== "" || status !== "";

  function sortBy(field: SortField) {
    setSort((s) => (s.field === field ? { field, order: s.order === "asc" ? "desc" : "asc" } : { field, order: "asc" }));
  }
  function header(field: SortField, label: string) {
    const active = sort.field === field;
    return (
      <th aria-sort={active ? (sort.order === "asc" ? "ascending" : "descending") : "none"}>
        <button type="button" className="sort" onClick={() => sortBy(field)}>
          {label}
          <span aria-hidden="true">{active ? (sort.order === "asc" ? " ▲" : " ▼") : " ↕"}</span>
        </button>
      </th>
    );
  }

  return (
    <section aria-labelledby="keys-title">
      <div className="page-head">
        <div>
          <p className="crumb">Configuration</p>
          <h1 id="keys-title">API keys</h1>
          <p className="muted">Keys authenticate your applications to every gateway of the organization.</p>
        </div>
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          Create Key
        </button>
      </div>
      <div className="toolbar" role="search">
        <label className="visually-hidden" htmlFor="key-search">
          Search by name or key preview
        </label>
        <input
          id="key-search"
          type="search"
          placeholder="Search by name or key preview"
          value={searchInput}
          onChange={(e) => setSearchInput(e.target.value)}
        />
        <label className="visually-hidden" htmlFor="key-status">
          Status
        </label>
        <select id="key-status" value={status} onChange={(e) => setStatus(e.target.value as "" | KeyStatus)}>
          <option value="">All</option>
          <option value="active">Active</option>
          <option value="inactive">Inactive</option>
          <option value="expired">Expired</option>
          <option value="revoked">Revoked</option>
        </select>
        {list.loading && <span className="muted small">Loading…</span>}
      </div>
      <ErrorBanner error={list.error} />
      {list.data && rows.length === 0 && cursors.length === 1 ? (
        filtered ? (
          <EmptyState title="No key matches">Try another search or set the status filter back to All.</EmptyState>
        ) : (
          <EmptyState
            title="No API keys yet"
            action={
              <button type="button" className="primary" onClick={() => setCreating(true)}>
                Create Key
              </button>
            }
          >
            Create a key for a user of the organization; it works on every gateway of the organization within seconds.
          </EmptyState>
        )
      ) : (
        <div className="table-wrap">
          <table className="keys">
            <thead>
              <tr>
                {header("name", "Name")}
                {header("owner", "Owner")}
                <th>Key</th>
                {header("status", "Status")}
                <th>Expires</th>
                <th>Last used</th>
                <th>Created</th>
                {header("requests", "Requests")}
                <th>Usage</th>
                <th>
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((k) => (
                <tr key={k.id} className="clickable" onClick={() => setDetail(k)} data-key-id={k.id}>
                  <td>
                    <button type="button" className="link" onClick={(e) => (e.stopPropagation(), setDetail(k))}>
                      {k.name}
                    </button>
                  </td>
                  <td>{k.owner ?? k.user_id}</td>
                  <td className="nowrap">
                    <code>{k.key_prefix}…</code>{" "}
                    <CopyButton text={k.key_prefix} label="Copy" ariaLabel={`Copy the key preview of ${k.name}`} className="tiny" />
                  </td>
                  <td>
                    <StatusBadge status={k.status} />
                  </td>
                  <td>{k.expires_at ? formatDate(k.expires_at) : "Never"}</td>
                  <td>{k.last_used_at ? formatDate(k.last_used_at) : "Never"}</td>
                  <td>{formatDate(k.created_at)}</td>
                  <td className="num">{formatNumber(k.requests)}</td>
                  <td className="num">{(k.usage_pct ?? 0).toFixed(1)}%</td>
                  <td>
                    <button
                      type="button"
                      className="icon danger"
                      aria-label={`Delete ${k.name}`}
                      title="Delete"
                      onClick={(e) => {
                        e.stopPropagation();
                        setDeleting(k);
                      }}
                    >
                      <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
                        <path d="M3 6h18M8 6V4h8v2M19 6l-1 14H6L5 6M10 11v6M14 11v6" />
                      </svg>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav className="pager" aria-label="Pages">
        <button type="button" className="secondary" disabled={cursors.length === 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
          Previous
        </button>
        <span className="muted small">Page {cursors.length}</span>
        <button
          type="button"
          className="secondary"
          disabled={!list.data?.next_cursor}
          onClick={() => list.data?.next_cursor && setCursors((c) => [...c, list.data!.next_cursor])}
        >
          Next
        </button>
      </nav>

      {creating && (
        <CreateKeyDialog
          onClose={() => setCreating(false)}
          onCreated={(key) => {
            setCreating(false);
            setRevealed({ key, title: "API Key created" });
            list.reload();
          }}
        />
      )}
      {revealed && <RevealDialog revealed={revealed.key} title={revealed.title} onDone={() => setRevealed(undefined)} />}
      {detail && (
        <KeyDetailDialog
          apiKey={detail}
          onClose={() => setDetail(undefined)}
          onChanged={(k) => {
            setDetail(k);
            list.reload();
          }}
          onRotated={(k) => {
            setDetail(undefined);
            setRevealed({ key: k, title: "API Key rotated" });
            list.reload();
          }}
          onDelete={(k) => {
            setDetail(undefined);
            setDeleting(k);
          }}
        />
      )}
      {deleting && (
        <ConfirmDeleteDialog
          apiKey={deleting}
          onClose={() => setDeleting(undefined)}
          onDeleted={() => {
            setDeleting(undefined);
            list.reload();
          }}
        />
      )}
    </section>
  );
}
