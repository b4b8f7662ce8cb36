import type { AppContext } from "../context.js";
import type { RequestRecord } from "../routes/request-record.js";

/**
 * What a finished request cost in USD, priced by the kind of provider it was
 * routed to; null when it had no usage, no provider, or no known price.
 */
export function requestCostUsd(ctx: Pick<AppContext, "prices" | "providers">, rec: Pick<RequestRecord, "provider" | "model" | "usage">): number | null {
  const micro = requestCostMicroUsd(ctx, rec);
  return micro === null ? null : micro / 1e6;
}

/**
 * The request's cost in micro-USD by the provider that answered (after any
 * fallback). OpenAI-style usage counts cached tokens inside prompt_tokens, the
 * price table bills them apart (Anthropic's convention): take them out first.
 */
export function requestCostMicroUsd(
  ctx: Pick<AppContext, "prices" | "providers">,
  rec: Pick<RequestRecord, "provider" | "model" | "usage" | "upstreamModel">,
): number | null {
  if (rec.provider === null || rec.model === null || rec.usage === null) return null;
  const u = rec.usage;
  if (u.promptTokens === null && u.completionTokens === null) return null;
  const kind = ctx.providers.providers.find((p) => p.name === rec.provider)?.kind;
  if (kind === undefined) return null;
  const cached = u.cacheReadTokens ?? 0;
  const usage = kind === "anthropic" || cached === 0 || u.promptTokens === null ? u : { ...u, promptTokens: Math.max(0, u.promptTokens - cached) };
  // The upstream's own name (a routing prefix such as `anthropic/` stripped) is what the table prices.
  return ctx.prices.costMicroUsd(kind, rec.upstreamModel ?? rec.model, usage);
}
