import type { AppContext } from "../context.js";
import type { ModelPriceRecord } from "../repositories/change-log.js";
import {
  allModelPriceRecords,
  deleteModelPrices,
  priceResourceId,
  samePrice,
  upsertModelPrices,
} from "../repositories/model-prices.js";
import { listOrgs, lockOrg } from "../repositories/orgs.js";
import { writeWithChanges } from "../changes/write-with-changes.js";
import { DATASET_NAME, DATASET_VERSION, defaultPriceTable } from "./default-prices.js";

export interface SeedResult {
  added: number;
  updated: number;
  removed: number;
  /** The last revision written; null when nothing changed. */
  revision: number | null;
}

/**
 * Brings an organization's default prices in line with the dataset: adds and
 * updates defaults, removes defaults the dataset no longer has, and never
 * touches an override. Writes (and syncs) only what differs, so a restart
 * with the same dataset writes nothing to the change log.
 */
export async function seedDefaultPrices(
  app: AppContext,
  orgId: string,
  table: Map<string, ModelPriceRecord> = defaultPriceTable(app.now()),
): Promise<SeedResult> {
  const { result, revision } = await writeWithChanges(app, orgId, async ({ trx, emit, audit }) => {
    // Serializes with admin overrides of this organization (see model-prices routes).
    await lockOrg(trx, orgId);
    const current = new Map(
      (await allModelPriceRecords(trx, orgId)).map((r) => [priceResourceId(r.provider, r.model), r]),
    );
    const writes: ModelPriceRecord[] = [];
    let added = 0;
    for (const [id, d] of table) {
      const cur = current.get(id);
      if (cur?.source === "override" || (cur && samePrice(cur, d))) continue;
      if (!cur) added++;
      writes.push(d);
    }
    const removed = [...current.entries()]
      .filter(([id, r]) => r.source === "default" && !table.has(id))
      .map(([, r]) => r);
    if (writes.length === 0 && removed.length === 0) return { added: 0, updated: 0, removed: 0 };
    await upsertModelPrices(trx, orgId, writes, app.now());
    await deleteModelPrices(trx, orgId, removed);
    for (const w of writes)
      emit({ kind: "model_price_upsert", resourceId: priceResourceId(w.provider, w.model), payload: w });
    for (const r of removed) {
      emit({
        kind: "model_price_delete",
        resourceId: priceResourceId(r.provider, r.model),
        payload: { provider: r.provider, model: r.model },
      });
    }
    const counts = { added, updated: writes.length - added, removed: removed.length };
    audit({
      orgId,
      actor: "system",
      action: "model_price.seed",
      targetType: "price_dataset",
      targetId: `${DATASET_NAME}@${DATASET_VERSION}`,
      after: counts,
    });
    return counts;
  });
  return { ...result, revision };
}

/** Seeds every organization; run at start-up, after migrations. */
export async function seedAllDefaultPrices(app: AppContext): Promise<void> {
  const table = defaultPriceTable(app.now());
  for (const org of await listOrgs(app.db)) {
    const r = await seedDefaultPrices(app, org.id, table);
    if (r.revision !== null) {
      app.logger.info(
        {
          orgId: org.id,
          dataset: `${DATASET_NAME}@${DATASET_VERSION}`,
          added: r.added,
          updated: r.updated,
          removed: r.removed,
          revision: r.revision,
        },
        "default model prices refreshed",
      );
    }
  }
}
