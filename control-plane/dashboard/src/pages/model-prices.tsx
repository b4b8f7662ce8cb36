import { useState } from "react";
import { api, qs, type ModelPrice } from "../api.js";
import { ActionButton, DataTable, Pager, SearchToolbar, filterOptions, useCursorPages, useDebounced } from "../list.js";
import { EmptyState, ErrorBanner, Field, FormDialog, PageSection, fieldErrors, formatDate, useLoad } from "../ui.js";

interface PricePage {
  data: ModelPrice[];
  next_cursor: string | null;
  dataset: { name: string; version: string };
}

const SOURCES = filterOptions("All sources", ["default", "override"]);

/** USD per million tokens per model: the bundled defaults and the organization's overrides. */
export function ModelPricesPage() {
  const [searchInput, setSearchInput] = useState("");
  const search = useDebounced(searchInput.trim());
  const [source, setSource] = useState("");
  const pages = useCursorPages([search, source]);
  const cursor = pages.cursor;
  const [editing, setEditing] = useState<ModelPrice | "new" | undefined>();
  const [error, setError] = useState<unknown>();
  const prices = useLoad(
    () => api<PricePage>("GET", `/internal/model-prices${qs({ search, source, limit: 50, cursor })}`),
    [search, source, cursor],
  );
  const usd = (n: number | null) => (n === null ? "—" : `$${n}`);
  const intro = (
    <>
      USD per million tokens, used for budgets and the cost in usage.{" "}
      {prices.data && `Defaults from ${prices.data.dataset.name} ${prices.data.dataset.version}.`}
    </>
  );
  return (
    <PageSection
      crumb="Configuration"
      title="Model prices"
      intro={intro}
      action={{ label: "Override a price", onClick: () => setEditing("new") }}
    >
      <SearchToolbar
        search={{ id: "price-search", label: "Search models", value: searchInput, onChange: setSearchInput }}
        filter={{ id: "price-source", label: "Source", value: source, onChange: setSource, options: SOURCES }}
      />
      <ErrorBanner error={prices.error ?? error} />
      {prices.data && prices.data.data.length === 0 ? (
        <EmptyState title="No price matches">Clear the search, or add an override with Override a price.</EmptyState>
      ) : (
        <DataTable
          actions
          headers={["Provider", "Model", "Input", "Output", "Cache read", "Cache write", "Source", "Updated"]}
        >
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
                <button
                  type="button"
                  className="secondary small"
                  aria-label={`Edit the price of ${p.model}`}
                  onClick={() => setEditing(p)}
                >
                  Edit
                </button>
                {p.source === "override" && (
                  <>
                    {" "}
                    <ActionButton
                      label="Reset"
                      ariaLabel={`Remove the override of ${p.model}`}
                      run={async () => {
                        await api("DELETE", `/internal/model-prices/${encodeURIComponent(p.provider)}/${p.model}`);
                        prices.reload();
                      }}
                      onError={setError}
                    />
                  </>
                )}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      <Pager pages={pages} nextCursor={prices.data?.next_cursor} />
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
    </PageSection>
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
  const labels: Record<string, string> = {
    provider: "Provider",
    model: "Model",
    input_usd_per_mtok: "Input (USD per million tokens)",
    output_usd_per_mtok: "Output (USD per million tokens)",
    cache_read_usd_per_mtok: "Cache read (optional)",
    cache_write_usd_per_mtok: "Cache write (optional)",
  };
  const names = Object.keys(labels);
  return (
    <FormDialog
      title={p ? `Override ${p.model}` : "Override a price"}
      onClose={props.onClose}
      error={general}
      label="Save"
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
          {(id, db) => (
            <input
              id={id}
              aria-describedby={db}
              value={v[n]}
              disabled={!!p && (n === "provider" || n === "model")}
              onChange={(e) => setV({ ...v, [n]: e.target.value })}
            />
          )}
        </Field>
      ))}
      {p && <p className="muted small">Last updated {formatDate(p.updated_at)}.</p>}
    </FormDialog>
  );
}
