import type { Database } from "better-sqlite3";
import type { PriceRule } from "../pricing/price-index.js";

export interface ModelPriceRepository {
  all(): PriceRule[];
  upsert(rule: PriceRule, revision: number): void;
  /** True when the price existed. */
  delete(provider: string, model: string): boolean;
  /** Removes every price (a snapshot replaces them all). */
  clear(): void;
}

export function createModelPriceRepository(db: Database): ModelPriceRepository {
  // Columns renamed to PriceRule's fields, so a row is a rule as it comes.
  const selectAll = db.prepare<[], PriceRule>(
    `SELECT provider, model, input_usd_per_mtok AS inputUsdPerMtok, output_usd_per_mtok AS outputUsdPerMtok,
            cache_read_usd_per_mtok AS cacheReadUsdPerMtok, cache_write_usd_per_mtok AS cacheWriteUsdPerMtok, source
     FROM model_prices ORDER BY provider, model`,
  );
  const upsert = db.prepare(
    `INSERT INTO model_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok, cache_read_usd_per_mtok, cache_write_usd_per_mtok,
                               source, updated_revision)
     VALUES (@provider, @model, @input, @output, @cache_read, @cache_write, @source, @revision)
     ON CONFLICT(provider, model) DO UPDATE SET
       input_usd_per_mtok = excluded.input_usd_per_mtok, output_usd_per_mtok = excluded.output_usd_per_mtok,
       cache_read_usd_per_mtok = excluded.cache_read_usd_per_mtok, cache_write_usd_per_mtok = excluded.cache_write_usd_per_mtok,
       source = excluded.source, updated_revision = excluded.updated_revision`,
  );
  const del = db.prepare<[string, string]>(`DELETE FROM model_prices WHERE provider = ? AND model = ?`);
  const clear = db.prepare(`DELETE FROM model_prices`);
  return {
    all: () => selectAll.all(),
    upsert: (p, revision) => {
      upsert.run({
        provider: p.provider,
        model: p.model,
        input: p.inputUsdPerMtok,
        output: p.outputUsdPerMtok,
        cache_read: p.cacheReadUsdPerMtok,
        cache_write: p.cacheWriteUsdPerMtok,
        source: p.source,
        revision,
      });
    },
    delete: (provider, model) => del.run(provider, model).changes > 0,
    clear: () => {
      clear.run();
    },
  };
}
