import { useEffect, useState } from "react";
import { api, qs, type ModelPrice } from "../api.js";
import { Dialog, EmptyState, ErrorBanner, Field, fieldErrors, formatDate, useLoad } from "../ui.js";

interface PricePage {
  data: ModelPrice[];
  next_cursor: string | null;
  dataset: { name: string; version: string };
}

/** USD per million tokens per model: the bundled defaults and the organization's overrides. */
export function ModelPricesPage() {
  const [searchInput, setSearchInput] = useState("");
  const [search, setSearch] = useState("");
  const [source, setSource] = useState("");
  const [cursors, setCursors] = useState<Array<string | null>>([null]);
  const [editing, setEditing] = useState<ModelPrice | "new" | undefined>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    const t = setTimeout(() => setSearch(searchInput.trim()), 250);
    return () => clearTimeout(t);
  }, [searchInput]);
  useEffect(() => setCursors([null]), [search, source]);
  const cursor = cursors[cursors.length - 1] ?? null;
  const prices = useLoad(() => api<PricePage>("GET", `/internal/model-prices${qs({ search, source, limit: 50, cursor })}`), [search, source, cursor]);
  const usd = (n: number | null) => (n === null ? "—" : `$${n}`);
  return (
    <section aria-labelledby="prices-title">
      <div className="page-head">
        <div>
          <p className="crumb">Configuration</p>
          <h1 id="prices-title">Model prices</h1>
          <p className="muted">
            USD per million tokens, used for budgets and the cost in usage.{" "}
            {prices.data && `Defaults from ${prices.data.dataset.name} ${prices.data.dataset.version}.`}
          </p>
        </div>
        <button type="button" className="primary" onClick={() => setEditing("new")}>
          Override a price
        </button>
      </div>
      <div className="toolbar" role="search">
        <label className="visually-hidden" htmlFor="price-search">
          Search models
        </label>
        <input id="price-search" type="search" placeholder="Search models" value={searchInput} onChange={(e) => setSearchInput(e.target.value)} />
        <label className="visually-hidden" htmlFor="price-source">
          Source
        </label>
        <select id="price-source" value={source} onChange={(e) => setSource(e.target.value)}>
          <option value="">All sources</option>
          <option value="default">Default</option>
          <option value="override">Override</option>
        </select>
      </div>
      <ErrorBanner error={prices.error ?? error} />
      {prices.data && prices.data.data.length === 0 ? (
        <EmptyState title="No price matches">Clear the search, or add an override with Override a price.</EmptyState>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Provider</th>
                <th>Model</th>
                <th>Input</th>
                <th>Output</th>
                <th>Cache read</th>
                <th>Cache write</th>
                <th>Source</th>
                <th>Updated</th>
                <th>
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {prices.data?.data.map((p) => (
                <tr key={`${p.provider}/${p.model}`}>
                  <td>{p.provider}</td>
                  <td>
                    <code>{p.model}</code>
                  </td>
                  <td className="num">{usd(p.input_usd_per_mtok)}</td>
                  <td className="num">{usd(p.output_usd_per_mtok)}</td>
                  <td className="num">{usd(p.cache_read_usd_per_mtok)}</td>
                  <td className="num">{usd(p.cache_write_usd_per_mtok)}</td>
                  <td>
                    <span className={`badge ${p.source === "override" ? "active" : "neutral"}`}>{p.source}</span>
                  </td>
                  <td>{formatDate(p.updated_at)}</td>
                  <td className="nowrap">
                    <button type="button" className="secondary small" aria-label={`Edit the price of ${p.model}`} onClick={() => setEditing(p)}>
                      Edit
                    </button>
                    {p.source === "override" && (
                      <>
                        {" "}
                        <button
                          type="button"
                          className="danger small"
                          aria-label={`Remove the override of ${p.model}`}
                          onClick={async () => {
                            try {
                              await api("DELETE", `/internal/model-prices/${encodeURIComponent(p.provider)}/${p.model}`);
                              prices.reload();
                            } catch (err) {
                              setError(err);
                            }
                          }}
                        >
                          Reset
                        </button>
                      </>
                    )}
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
        <button type="button" className="secondary" disabled={!prices.data?.next_cursor} onClick={() => prices.data?.next_cursor && setCursors((c) => [...c, prices.data!.next_cursor])}>
          Next
        </button>
      </nav>
      {editing && (
        <PriceDialog
          price={editing === "new" ? undefined : editing}
          onClose={() => setEditing(undefined)}
          onSaved={() => {
            setEditing(undefined);
            prices.reload();
          }}
        />
      )}
    </section>
  );
}

function PriceDialog(props: { price: ModelPrice | undefined; onClose: () => void; onSaved: () => void }) {
  const p = props.price;
  const [v, setV] = useState<Record<string, string>>({
    provider: p?.provider ?? "openai",
    model: p?.model ?? "",
    input_usd_per_mtok: p?.input_usd_per_mtok.toString() ?? "",
    output_usd_per_mtok: p?.output_usd_per_mtok.toString() ?? "",
    cache_read_usd_per_mtok: p?.cache_read_usd_per_mtok?.toString() ?? "",
    cache_write_usd_per_mtok: p?.cache_write_usd_per_mtok?.toString() ?? "",
  });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [general, setGeneral] = useState<string | undefined>();
  const names = ["provider", "model", "input_usd_per_mtok", "output_usd_per_mtok", "cache_read_usd_per_mtok", "cache_write_usd_per_mtok"];
  const labels: Record<string, string> = {
    provider: "Provider",
    model: "Model",
    input_usd_per_mtok: "Input (USD per million tokens)",
    output_usd_per_mtok: "Output (USD per million tokens)",
    cache_read_usd_per_mtok: "Cache read (optional)",
    cache_write_usd_per_mtok: "Cache write (optional)",
  };
  return (
    <Dialog title={p ? `Override ${p.model}` : "Override a price"} onClose={props.onClose}>
      <form
        noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          const errs: Record<string, string> = {};
          if (!v.provider!.trim()) errs.provider = "is required";
          if (!v.model!.trim()) errs.model = "is required";
          const body: Record<string, number | null> = {};
          for (const n of names.slice(2)) {
            const raw = v[n]!.trim();
            if (raw === "") {
              if (n.startsWith("cache")) body[n] = null;
              else errs[n] = "is required";
            } else if (!Number.isFinite(Number(raw)) || Number(raw) < 0) errs[n] = "must be a number of 0 or more";
            else body[n] = Number(raw);
          }
          if (Object.keys(errs).length) return setErrors(errs);
          try {
            await api("PUT", `/internal/model-prices/${encodeURIComponent(v.provider!.trim())}/${v.model!.trim()}`, body);
            props.onSaved();
          } catch (err) {
            const fe = fieldErrors(err, names);
            setErrors(fe.fields);
            setGeneral(fe.general);
          }
        }}
      >
        {names.map((n) => (
          <Field key={n} label={labels[n]!} error={errors[n]}>
            {(id, db) => <input id={id} aria-describedby={db} value={v[n]} disabled={!!p && (n === "provider" || n === "model")} onChange={(e) => setV({ ...v, [n]: e.target.value })} />}
          </Field>
        ))}
        {p && <p className="muted small">Last updated {formatDate(p.updated_at)}.</p>}
        <ErrorBanner error={general} />
        <footer className="dialog-foot">
          <button type="button" className="secondary" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" className="primary">
            Save
          </button>
        </footer>
      </form>
    </Dialog>
  );
}
