import type { KeyRecord } from "../auth/key-index.js";
import type { Usage } from "../providers/usage.js";
import { estimatePromptTokens, maxOutputTokens, promptTokensBound, SIZE_BOUND_MIN_BYTES } from "./estimate.js";
import type { GatewayQuota, PriceLookup } from "./gateway-quota.js";
import type { LimitSpec } from "./limits.js";
import type { QuotaManager } from "./quota-manager.js";
import type { Refusal, Reservation } from "./lease.js";

/** Output tokens reserved for a request that sets no max_tokens (settled to the real count after). */
const DEFAULT_RESERVED_OUTPUT_TOKENS = 1024;

export { formatReset } from "./lease.js";

function needsTokens(specs: readonly LimitSpec[]): boolean {
  for (const s of specs) if (s.metric === "tpm" || s.metric === "tpd" || s.metric === "budget") return true;
  return false;
}

/**
 * Reserves what a request may spend against every limit it counts against
 * (key, user, team): one request and, when a token or budget limit applies,
 * its estimated prompt, its max_tokens (or DEFAULT_RESERVED_OUTPUT_TOKENS) and
 * their cost. A Refusal names the limit that said no. Synchronous unless a
 * lease must be fetched from the control plane first.
 *
 * A large body (`bodyBytes`, SIZE_BOUND_MIN_BYTES and up) is first reserved at
 * its size bound (promptTokensBound: never below its real prompt tokens) when
 * this gateway holds that much free on every limit: the request is admitted
 * then whatever its exact count, and the limit is safe since more is held back
 * than the prompt can use. Near a limit (the bound does not fit), the prompt
 * is counted as for any body, so a request is refused exactly when it was.
 */
export function reserve(
  manager: QuotaManager,
  prices: PriceLookup,
  specs: readonly LimitSpec[],
  providerKind: string,
  model: string,
  json: Record<string, unknown>,
  bodyBytes = 0,
): Reservation | Refusal | Promise<Reservation | Refusal> {
  let tokens = 0;
  let cost = 0;
  let outputCapped = true;
  if (needsTokens(specs)) {
    const cap = maxOutputTokens(json);
    outputCapped = cap !== null;
    const maxOut = cap ?? DEFAULT_RESERVED_OUTPUT_TOKENS;
    if (bodyBytes >= SIZE_BOUND_MIN_BYTES) {
      const bound = promptTokensBound(bodyBytes);
      const needs = {
        tokens: bound + maxOut,
        costMicroUsd: prices.estimateMicroUsd(providerKind, model, bound, maxOut) ?? 0,
        outputCapped,
      };
      if (manager.holds(specs, needs)) return manager.admit(specs, needs);
    }
    const promptEstimate = estimatePromptTokens(json);
    tokens = promptEstimate + maxOut;
    cost = prices.estimateMicroUsd(providerKind, model, promptEstimate, maxOut) ?? 0;
  }
  return manager.admit(specs, { tokens, costMicroUsd: cost, outputCapped });
}

/**
 * Before the answer's last bytes: the reservation settled with the real usage
 * and cost, and the usage queued for the control plane. Returns what the answer
 * must await before its last bytes: the usage journal's write (usage-outbox.ts,
 * addBeforeAnswer), shared by the answers settled in the same event-loop turn.
 */
export function settleUsage(
  quota: GatewayQuota,
  key: KeyRecord,
  reservation: Reservation | null,
  usage: Usage | null,
  costMicroUsd: number | null,
): Promise<void> | undefined {
  const u = usage;
  if (reservation) {
    const tokens = u ? (u.totalTokens ?? (u.promptTokens ?? 0) + (u.completionTokens ?? 0)) : null;
    // No usage (an error, a client that left): the reservation stands as the best estimate of what was spent.
    quota.manager.settle(reservation, { tokens, costMicroUsd: u ? (costMicroUsd ?? 0) : null });
  }
  // Stand-ins for no key (DISABLE_AUTH, AUTH_BYPASS_PATHS) have no owner: nothing to report.
  if (!key.id || !key.userId) return undefined;
  const written = quota.outbox.addBeforeAnswer({
    keyId: key.id,
    userId: key.userId,
    teamId: key.teamId,
    // Fleet time: the usage's UTC day must be the day its budget window counted it in.
    atMs: quota.clock.now(),
    inputTokens: u?.promptTokens ?? 0,
    outputTokens: u?.completionTokens ?? 0,
    costMicroUsd: costMicroUsd ?? 0,
  });
  quota.touch();
  return written;
}
