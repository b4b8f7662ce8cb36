import type { AppContext } from "../context.js";
import type { RequestRecord } from "../routes/request-record.js";

/**
 * What a finished request cost in USD, priced by the kind of provider it was
 * routed to; null when it had no usage, no provider, or no known price.
 */
export function requestCostUsd(ctx: Pick<AppContext, "prices" | "providers">, rec: Pick<RequestRecord, "provider" | "model" | "usage">): number | null {
  if (rec.provider === null || rec.model === null || rec.usage === null) return null;
  if (rec.usage.promptTokens === null && rec.usage.completionTokens === null) return null;
  const kind = ctx.providers.providers.find((p) => p.name === rec.provider)?.kind;
  if (kind === undefined) return null;
  const micro = ctx.prices.costMicroUsd(kind, rec.model, rec.usage);
  return micro === null ? null : micro / 1e6;
}
