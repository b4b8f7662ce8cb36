import { useEffect, useState, type ReactElement, type ReactNode } from "react";
import { Options } from "./ui.js";

// The pieces of a list page: its table, row actions, search toolbar and cursor paging.

/** A list table; `actions` adds the trailing column whose header only screen readers announce. */
export function DataTable(props: {
  headers: Array<string | ReactElement>;
  actions?: boolean;
  className?: string;
  children: ReactNode;
}) {
  return (
    <div className="table-wrap">
      <table className={props.className}>
        <thead>
          <tr>
            {props.headers.map((h) => (typeof h === "string" ? <th key={h}>{h}</th> : h))}
            {props.actions && (
              <th>
                <span className="visually-hidden">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </div>
  );
}

/** A row action that runs a request (after a confirmation when `confirm` is set) and reports a failure to `onError`. */
export function ActionButton(props: {
  label: string;
  className?: string;
  ariaLabel?: string;
  confirm?: string;
  run: () => Promise<unknown>;
  onError: (err: unknown) => void;
}) {
  return (
    <button
      type="button"
      className={props.className ?? "danger small"}
      aria-label={props.ariaLabel}
      onClick={async () => {
        if (props.confirm !== undefined && !window.confirm(props.confirm)) return;
        try {
          await props.run();
        } catch (err) {
          props.onError(err);
        }
      }}
    >
      {props.label}
    </button>
  );
}

/** Follows `value` a moment after it stops changing (search as you type). */
export function useDebounced<T>(value: T, ms = 250): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return settled;
}

/**
 * Cursor paging: keeps the cursors of the pages before this one, so Previous needs no offset;
 * any change of `filters` goes back to the first page.
 */
export function useCursorPages(filters: unknown[]): {
  cursor: string | null;
  page: number;
  previous: () => void;
  next: (cursor: string | null | undefined) => void;
} {
  const [cursors, setCursors] = useState<Array<string | null>>([null]);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  useEffect(() => setCursors([null]), filters);
  return {
    cursor: cursors[cursors.length - 1] ?? null,
    page: cursors.length,
    previous: () => setCursors((c) => c.slice(0, -1)),
    next: (cursor) => {
      if (cursor) setCursors((c) => [...c, cursor]);
    },
  };
}

/** Previous / Page n / Next under a cursor-paged list. */
export function Pager(props: {
  pages: { page: number; previous: () => void; next: (cursor: string | null | undefined) => void };
  nextCursor: string | null | undefined;
}) {
  return (
    <nav className="pager" aria-label="Pages">
      <button type="button" className="secondary" disabled={props.pages.page === 1} onClick={props.pages.previous}>
        Previous
      </button>
      <span className="muted small">Page {props.pages.page}</span>
      <button
        type="button"
        className="secondary"
        disabled={!props.nextCursor}
        onClick={() => props.pages.next(props.nextCursor)}
      >
        Next
      </button>
    </nav>
  );
}

/** A filter's options: "" (everything, labelled `all`), then each value, capitalized. */
export function filterOptions(all: string, values: string[]): Array<[string, string]> {
  return [["", all], ...values.map((v): [string, string] => [v, v[0]!.toUpperCase() + v.slice(1)])];
}

/** A list's search box and one select filter, both labelled for screen readers only; `children` follow them. */
export function SearchToolbar(props: {
  search: { id: string; label: string; value: string; onChange: (v: string) => void };
  filter: { id: string; label: string; value: string; onChange: (v: string) => void; options: Array<[string, string]> };
  children?: ReactNode;
}) {
  const { search, filter } = props;
  return (
    <div className="toolbar" role="search">
      <label className="visually-hidden" htmlFor={search.id}>
        {search.label}
      </label>
      <input
        id={search.id}
        type="search"
        placeholder={search.label}
        value={search.value}
        onChange={(e) => search.onChange(e.target.value)}
      />
      <label className="visually-hidden" htmlFor={filter.id}>
        {filter.label}
      </label>
      <select id={filter.id} value={filter.value} onChange={(e) => filter.onChange(e.target.value)}>
        <Options options={filter.options} />
      </select>
      {props.children}
    </div>
  );
}
