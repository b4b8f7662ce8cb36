import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { readFileSync } from "node:fs";
import { findProvider, type MatchLogic, type ModelInfo, type ModelPrice as DatasetPrice } from "@pydantic/genai-prices";
import type { ModelPriceRecord } from "../repositories/change-log.js";
import { priceResourceId } from "../repositories/model-prices.js";

/**
 * Default prices come from @pydantic/genai-prices, whose data is bundled in
 * the package: the control plane never fetches price updates (that only
 * happens through the package's updatePrices(), never called here), so the
 * defaults are the ones of the installed version, pinned by the lockfile.
 */
export const DATASET_NAME = "@pydantic/genai-prices";

/** The installed dataset's version (its package.json; the package does not export it). */
export const DATASET_VERSION: string = (() => {
  try {
    const entry = createRequire(import.meta.url).resolve(DATASET_NAME);
    return (JSON.parse(readFileSync(join(dirname(entry), "..", "package.json"), "utf8")) as { version: string })
      .version;
  } catch {
    return "unknown";
  }
})();

/** Dataset provider id → the gateway provider kind its prices are stored under. */
export const DATASET_PROVIDERS: Readonly<Record<string, string>> = {
  openai: "openai",
  anthropic: "anthropic",
  google: "gemini",
};

/** Provider kinds: lowercase slugs, or `*` for any provider. */
export const PROVIDER_RE = /^(\*|[a-z0-9][a-z0-9_.-]{0,63})$/;
/** Model names: what providers use (letters, digits, . _ - : / @ +), optionally ending in `*` (a prefix rule), or `*` alone. */
export const MODEL_RE = /^(\*|[A-Za-z0-9][A-Za-z0-9._:\/@+-]{0,199}\*?)$/;

/**
 * The names a dataset match rule stands for, as exact names and `*` prefix
 * rules. `equals` and `starts_with` map one to one; an `and` keeps its
 * `starts_with` (its other conditions only narrow it, and the exact rows of
 * the models it excludes win over a prefix); a regex that starts with a
 * literal followed by digits (`^claude-opus-5-\d{8}$`) becomes that literal's
 * prefix rule. `contains` and `ends_with` have no such form and are left out:
 * the dated-variant matching of the gateway covers what they were for.
 */
export function ruleNames(m: MatchLogic): string[] {
  if ("equals" in m) return [m.equals];
  if ("starts_with" in m) return [m.starts_with + "*"];
  if ("or" in m) return m.or.flatMap(ruleNames);
  if ("and" in m) {
    const prefix = m.and.find((x) => "starts_with" in x);
    return prefix ? ruleNames(prefix) : [];
  }
  if ("regex" in m) {
    const literal = /^\^((?:[A-Za-z0-9_:@\/-]|\\\.)+)\\d/.exec(m.regex)?.[1];
    return literal ? [literal.replace(/\\\./g, ".") + "*"] : [];
  }
  return [];
}

/**
 * The price of a model at `now`. Conditional prices (a new price from a
 * start date) take the last one in effect; time-of-day prices (off-peak
 * discounts) are skipped. Tiered prices (a higher rate past a prompt size,
 * e.g. 200k tokens) take the base tier.
 */
export function datasetPriceAt(info: ModelInfo, now: Date): DatasetPrice | undefined {
  if (!Array.isArray(info.prices)) return info.prices;
  let chosen: DatasetPrice | undefined;
  for (const c of info.prices) {
    if (!c.constraint) chosen = c.prices;
    else if (c.constraint.type === "start_date" && Date.parse(c.constraint.start_date) <= now.getTime())
      chosen = c.prices;
  }
  return chosen;
}

function baseRate(v: DatasetPrice[string]): number | null {
  const n = typeof v === "number" ? v : v && typeof v === "object" && "base" in v ? v.base : undefined;
  return typeof n === "number" && Number.isFinite(n) && n >= 0 ? n : null;
}

/**
 * The default price table, keyed by `provider/model`: every text-token price
 * of the providers in DATASET_PROVIDERS. A name that two dataset models claim
 * keeps the first one's price, as the dataset's own lookup does.
 */
export function defaultPriceTable(now: Date): Map<string, ModelPriceRecord> {
  const table = new Map<string, ModelPriceRecord>();
  for (const [datasetId, provider] of Object.entries(DATASET_PROVIDERS)) {
    const p = findProvider({ providerId: datasetId });
    if (!p || p.id !== datasetId) continue;
    for (const info of p.models) {
      const price = datasetPriceAt(info, now);
      const input = price && baseRate(price.input_mtok);
      if (!price || input === null || input === undefined) continue;
      const values = {
        input_usd_per_mtok: input,
        output_usd_per_mtok: baseRate(price.output_mtok) ?? 0,
        cache_read_usd_per_mtok: baseRate(price.cache_read_mtok),
        cache_write_usd_per_mtok: baseRate(price.cache_write_mtok),
      };
      for (const model of ruleNames(info.match)) {
        if (!MODEL_RE.test(model)) continue;
        const id = priceResourceId(provider, model);
        if (!table.has(id)) table.set(id, { provider, model, ...values, source: "default" });
      }
    }
  }
  return table;
}
