import type { Db } from "../../db/database.js";
import { orgRequestTotal } from "../../repositories/api-keys.js";

/**
 * The organization's request total behind the keys list's Usage % column,
 * kept for a few seconds: summing it reads every key of the organization, which
 * would cost every page of a large list more than the page itself. Counts only
 * change with the gateways' usage reports, so a total a few seconds old shows
 * the same shares. A stale total is answered at once and refreshed behind it.
 */
export function requestTotals(options: { db: Db; maxAgeMs: number; now?: () => number }) {
  const now = options.now ?? Date.now;
  const cache = new Map<string, { total: number; at: number; refreshing?: Promise<number> }>();
  const load = (orgId: string) => {
    const entry = cache.get(orgId);
    const refreshing = orgRequestTotal(options.db, orgId).then(
      (total) => {
        cache.set(orgId, { total, at: now() });
        return total;
      },
      (err: unknown) => {
        cache.delete(orgId);
        throw err;
      },
    );
    if (entry) entry.refreshing = refreshing;
    return refreshing;
  };
  return {
    async get(orgId: string): Promise<number> {
      const entry = cache.get(orgId);
      if (!entry) return load(orgId);
      // A failed refresh drops the entry, so the next call reads inline and its error surfaces there.
      if (now() - entry.at > options.maxAgeMs && !entry.refreshing) load(orgId).catch(() => {});
      return entry.total;
    },
  };
}
