/** One row of the synced price table: USD per million tokens. */
export interface PriceRule {
  /** Provider kind (openai, anthropic, gemini, ...) or `*` for any provider. */
  provider: string;
  /** Exact model name, a prefix rule ending in `*`, or `*` for any model of the provider. */
  model: string;
  inputUsdPerMtok: number;
  outputUsdPerMtok: number;
  /** Null: cache reads cost the input rate. */
  cacheReadUsdPerMtok: number | null;
  /** Null: cache writes cost the input rate. */
  cacheWriteUsdPerMtok: number | null;
  /** "default" (the dataset) or "override" (an admin). */
  source: string;
}

/**
 * Token counts of one request. The four counts are disjoint: `promptTokens`
 * are the input tokens billed at the input rate, not including those counted
 * as cache reads or writes (Anthropic's `input_tokens`; for OpenAI, subtract
 * `prompt_tokens_details.cached_tokens` from `prompt_tokens` when passing it
 * as `cacheReadTokens`). Null or absent counts count as 0.
 */
export interface TokenUsage {
  promptTokens: number | null | undefined;
  completionTokens: number | null | undefined;
  cacheReadTokens?: number | null | undefined;
  cacheWriteTokens?: number | null | undefined;
}

/**
 * Provider kinds that bill like another one when they have no price of their
 * own: Azure OpenAI serves OpenAI's models under the same names.
 */
const FALLBACK_PROVIDERS: Readonly<Record<string, readonly string[]>> = {
  "azure-openai": ["openai"],
};

/**
 * A date suffix providers put on pinned model versions: `-2024-08-06`,
 * `-20250514`, `@20250514` (Vertex) and OpenAI's older `-0613` (MMDD).
 */
const DATE_SUFFIX = /(?:-\d{4}-\d{2}-\d{2}|[-@]20\d{6}|-(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))$/;

/** The model name without a dated-version suffix, or undefined when it has none. */
export function undatedModel(model: string): string | undefined {
  const stripped = model.replace(DATE_SUFFIX, "");
  return stripped !== model && stripped !== "" ? stripped : undefined;
}

interface ProviderRules {
  exact: Map<string, PriceRule>;
  /** Prefix rules, longest prefix first; `*` alone is the empty prefix, so it comes last. */
  prefixes: Array<{ prefix: string; rule: PriceRule }>;
}

const MEMO_LIMIT = 2048;

function tokens(n: number | null | undefined): number {
  return typeof n === "number" && Number.isFinite(n) && n > 0 ? n : 0;
}

/** Micro-USD of `usage` under `rule`: a token at X USD per million costs X micro-USD. */
export function costOfUsage(rule: PriceRule, usage: TokenUsage): number {
  return (
    tokens(usage.promptTokens) * rule.inputUsdPerMtok +
    tokens(usage.completionTokens) * rule.outputUsdPerMtok +
    tokens(usage.cacheReadTokens) * (rule.cacheReadUsdPerMtok ?? rule.inputUsdPerMtok) +
    tokens(usage.cacheWriteTokens) * (rule.cacheWriteUsdPerMtok ?? rule.inputUsdPerMtok)
  );
}

/**
 * The synced price table in memory. Lookup of (provider kind, model): for the
 * provider, then its fallback kinds (azure-openai → openai), then `*` (any
 * provider), the first of: the exact name; the name without a date suffix
 * (gpt-4o-2024-08-06 → gpt-4o, claude-sonnet-4-20250514 → claude-sonnet-4);
 * the longest matching `*` prefix rule, where `*` alone (the provider's
 * catch-all) is the shortest.
 */
export class PriceIndex {
  private readonly byProvider = new Map<string, ProviderRules>();
  /** Lookups by raw client model strings: bounded, cleared on every change. */
  private readonly memo = new Map<string, PriceRule | null>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Every rule, for diagnostics and tests. */
  all(): PriceRule[] {
    return [...this.byProvider.values()].flatMap((p) => [...p.exact.values(), ...p.prefixes.map((x) => x.rule)]);
  }

  replaceAll(rules: readonly PriceRule[]): void {
    this.byProvider.clear();
    this.count = 0;
    for (const r of rules) this.put(r);
    this.memo.clear();
  }

  upsert(rule: PriceRule): void {
    this.remove(rule.provider, rule.model);
    this.put(rule);
    this.memo.clear();
  }

  delete(provider: string, model: string): boolean {
    const existed = this.remove(provider, model);
    this.memo.clear();
    return existed;
  }

  /** The rule that prices `model` served by a provider of kind `provider`, or undefined. */
  lookup(provider: string, model: string): PriceRule | undefined {
    const key = `${provider}\n${model}`;
    const hit = this.memo.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const found = this.find(provider, model);
    if (this.memo.size >= MEMO_LIMIT) this.memo.clear();
    this.memo.set(key, found ?? null);
    return found;
  }

  /** Integer micro-USD of a request's usage, or null when no price is known for the model. */
  costMicroUsd(provider: string, model: string, usage: TokenUsage): number | null {
    const rule = this.lookup(provider, model);
    return rule ? Math.round(costOfUsage(rule, usage)) : null;
  }

  /**
   * Integer micro-USD to reserve before a call: the whole prompt at the input
   * rate and `maxOutputTokens` at the output rate, rounded up. Null when no
   * price is known.
   */
  estimateMicroUsd(provider: string, model: string, promptTokens: number, maxOutputTokens: number): number | null {
    const rule = this.lookup(provider, model);
    if (!rule) return null;
    // The epsilon keeps float noise (3.0000000000000004) from adding a micro-USD.
    return Math.ceil(costOfUsage(rule, { promptTokens, completionTokens: maxOutputTokens }) - 1e-9);
  }

  private find(provider: string, model: string): PriceRule | undefined {
    const undated = undatedModel(model);
    for (const p of [provider, ...(FALLBACK_PROVIDERS[provider] ?? []), "*"]) {
      const rules = this.byProvider.get(p);
      if (!rules) continue;
      const exact = rules.exact.get(model) ?? (undated !== undefined ? rules.exact.get(undated) : undefined);
      if (exact) return exact;
      for (const { prefix, rule } of rules.prefixes) if (model.startsWith(prefix)) return rule;
    }
    return undefined;
  }

  private rulesOf(provider: string): ProviderRules {
    let rules = this.byProvider.get(provider);
    if (!rules) this.byProvider.set(provider, (rules = { exact: new Map(), prefixes: [] }));
    return rules;
  }

  private put(rule: PriceRule): void {
    const rules = this.rulesOf(rule.provider);
    if (rule.model.endsWith("*")) {
      const prefix = rule.model.slice(0, -1);
      const at = rules.prefixes.findIndex((x) => x.prefix.length < prefix.length);
      rules.prefixes.splice(at === -1 ? rules.prefixes.length : at, 0, { prefix, rule });
    } else {
      rules.exact.set(rule.model, rule);
    }
    this.count++;
  }

  private remove(provider: string, model: string): boolean {
    const rules = this.byProvider.get(provider);
    if (!rules) return false;
    let existed: boolean;
    if (model.endsWith("*")) {
      const at = rules.prefixes.findIndex((x) => x.rule.model === model);
      existed = at !== -1;
      if (existed) rules.prefixes.splice(at, 1);
    } else {
      existed = rules.exact.delete(model);
    }
    if (existed) this.count--;
    return existed;
  }
}
