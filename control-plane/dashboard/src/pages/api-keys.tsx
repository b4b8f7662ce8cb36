import { useState } from "react";
import { api, qs, type ApiKey, type KeyStatus, type Page, type Revealed } from "../api.js";
import { DataTable, Pager, SearchToolbar, filterOptions, useCursorPages, useDebounced } from "../list.js";
import {
  CopyButton,
  EmptyState,
  ErrorBanner,
  PageSection,
  StatusBadge,
  formatDate,
  formatNumber,
  useLoad,
} from "../ui.js";
import { ConfirmDeleteDialog } from "./keys/confirm-delete-dialog.js";
import { CreateKeyDialog } from "./keys/create-key-dialog.js";
import { KeyDetailDialog } from "./keys/key-detail-dialog.js";
import { RevealDialog } from "./keys/reveal.js";

type SortField = "name" | "owner" | "status" | "requests" | "created";
const PAGE_SIZE = 25;
const STATUSES = filterOptions("All", ["active", "inactive", "expired", "revoked"]);

/** Configuration → API keys: every list, filter and action of seed 004, paged by the server. */
export function ApiKeysPage() {
  const [searchInput, setSearchInput] = useState("");
  // Search as you type, a moment after the last keystroke.
  const search = useDebounced(searchInput.trim());
  const [status, setStatus] = useState<"" | KeyStatus>("");
  const [sort, setSort] = useState<{ field: SortField; order: "asc" | "desc" }>({ field: "created", order: "desc" });
  const pages = useCursorPages([search, status, sort]);
  const cursor = pages.cursor;
  const [creating, setCreating] = useState(false);
  const [revealed, setRevealed] = useState<{ key: Revealed; title: string } | undefined>();
  const [detail, setDetail] = useState<ApiKey | undefined>();
  const [deleting, setDeleting] = useState<ApiKey | undefined>();

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
    setSort((s) =>
      s.field === field ? { field, order: s.order === "asc" ? "desc" : "asc" } : { field, order: "asc" },
    );
  }
  function header(field: SortField, label: string) {
    const active = sort.field === field;
    return (
      <th key={field} aria-sort={active ? (sort.order === "asc" ? "ascending" : "descending") : "none"}>
        <button type="button" className="sort" onClick={() => sortBy(field)}>
          {label}
          <span aria-hidden="true">{active ? (sort.order === "asc" ? " ▲" : " ▼") : " ↕"}</span>
        </button>
      </th>
    );
  }

  return (
    <PageSection
      crumb="Configuration"
      title="API keys"
      intro="Keys authenticate your applications to every gateway of the organization."
      action={{ label: "Create Key", onClick: () => setCreating(true) }}
    >
      <SearchToolbar
        search={{
          id: "key-search",
          label: "Search by name or key preview",
          value: searchInput,
          onChange: setSearchInput,
        }}
        filter={{
          id: "key-status",
          label: "Status",
          value: status,
          onChange: (v) => setStatus(v as "" | KeyStatus),
          options: STATUSES,
        }}
      >
        {list.loading && <span className="muted small">Loading…</span>}
      </SearchToolbar>
      <ErrorBanner error={list.error} />
      {list.data && rows.length === 0 && pages.page === 1 ? (
        filtered ? (
          <EmptyState title="No key matches">Try another search or set the status filter back to All.</EmptyState>
        ) : (
          <EmptyState title="No API keys yet" action={{ label: "Create Key", onClick: () => setCreating(true) }}>
            Create a key for a user of the organization; it works on every gateway of the organization within seconds.
          </EmptyState>
        )
      ) : (
        <DataTable
          className="keys"
          actions
          headers={[
            header("name", "Name"),
            header("owner", "Owner"),
            "Key",
            header("status", "Status"),
            "Expires",
            "Last used",
            "Created",
            header("requests", "Requests"),
            "Usage",
          ]}
        >
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
                <CopyButton
                  text={k.key_prefix}
                  label="Copy"
                  ariaLabel={`Copy the key preview of ${k.name}`}
                  className="tiny"
                />
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
                  <svg
                    viewBox="0 0 24 24"
                    fill="none"
                    stroke="currentColor"
                    strokeWidth="2"
                    strokeLinecap="round"
                    strokeLinejoin="round"
                    aria-hidden="true"
                  >
                    <path d="M3 6h18M8 6V4h8v2M19 6l-1 14H6L5 6M10 11v6M14 11v6" />
                  </svg>
                </button>
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      <Pager pages={pages} nextCursor={list.data?.next_cursor} />

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
      {revealed && (
        <RevealDialog revealed={revealed.key} title={revealed.title} onDone={() => setRevealed(undefined)} />
      )}
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
    </PageSection>
  );
}
