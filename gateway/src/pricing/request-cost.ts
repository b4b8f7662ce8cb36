import type { ProviderKind } from "../providers/types.js";
import type { Usage } from "../providers/usage.js";
import type { PriceIndex } from "./price-index.js";

/** What pricing needs of the gateway: the price table, and each configured provider's kind. */
export interface PricingSources {
  prices: Pick<PriceIndex, "costMicroUsd">;
  providers: { providers: readonly { name: string; kind: ProviderKind }[] };
}

/** A finished request as pricing sees it. */
export interface PricedRequest {
  /** The configured provider that answered (after any fallback). */
  provider: string | null;
  model: string | null;
  /** The model name sent upstream, when a routing prefix was stripped. */
  upstreamModel?: string | null | undefined;
  usage: Usage | null;
}

/**
 * The request's cost in micro-USD by the provider that answered (after any
 * fallback); null when it had no usage, no provider, or no known price.
 * OpenAI-style usage counts cached tokens inside prompt_tokens, the price
 * table bills them apart (Anthropic's convention): take them out first.
 */
export function requestCostMicroUsd(sources: PricingSources, rec: PricedRequest): number | null {
  if (rec.provider === null || rec.model === null || rec.usage === null) return null;
  const u = rec.usage;
  if (u.promptTokens === null && u.completionTokens === null) return null;
  const kind = sources.providers.providers.find((p) => p.name === rec.provider)?.kind;
  if (kind === undefined) return null;
  const cached = u.cacheReadTokens ?? 0;
  const usage =
    kind === "anthropic" || cached === 0 || u.promptTokens === null
      ? u
      : { ...u, promptTokens: Math.max(0, u.promptTokens - cached) };
  // The upstream's own name (a routing prefix such as `anthropic/` stripped) is what the table prices.
  return sources.prices.costMicroUsd(kind, rec.upstreamModel ?? rec.model, usage);
}
