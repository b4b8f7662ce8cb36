import { sql } from "kysely";
import type { Db } from "../db/database.js";
import type { ModelPricesTable, PriceValues } from "../db/schema.js";
import type { ModelPriceRecord } from "./change-log.js";
import { likeLiteral, toIso, toNullableNumber } from "./rows.js";

export type { ModelPriceRecord } from "./change-log.js";

/** A price row as the admin API shows it. */
export interface ModelPrice extends ModelPriceRecord {
  updated_at: string;
}

/** The numbers of a price, without its identity or source. */
export type { PriceValues };

type Row = Pick<
  ModelPricesTable,
  | "provider"
  | "model"
  | "input_usd_per_mtok"
  | "output_usd_per_mtok"
  | "cache_read_usd_per_mtok"
  | "cache_write_usd_per_mtok"
  | "source"
> & { updated_at: Date };

const COLUMNS = [
  "provider",
  "model",
  "input_usd_per_mtok",
  "output_usd_per_mtok",
  "cache_read_usd_per_mtok",
  "cache_write_usd_per_mtok",
  "source",
  "updated_at",
] as const;

function toRecord(r: Row): ModelPriceRecord {
  return {
    provider: r.provider,
    model: r.model,
    input_usd_per_mtok: Number(r.input_usd_per_mtok),
    output_usd_per_mtok: Number(r.output_usd_per_mtok),
    cache_read_usd_per_mtok: toNullableNumber(r.cache_read_usd_per_mtok),
    cache_write_usd_per_mtok: toNullableNumber(r.cache_write_usd_per_mtok),
    source: r.source,
  };
}

function toModelPrice(r: Row): ModelPrice {
  return { ...toRecord(r), updated_at: toIso(r.updated_at)! };
}

/** Same numbers (the identity and source are compared by the caller). */
export function samePrice(a: PriceValues, b: PriceValues): boolean {
  return (
    a.input_usd_per_mtok === b.input_usd_per_mtok &&
    a.output_usd_per_mtok === b.output_usd_per_mtok &&
    a.cache_read_usd_per_mtok === b.cache_read_usd_per_mtok &&
    a.cache_write_usd_per_mtok === b.cache_write_usd_per_mtok
  );
}

/** The change-log resource id of a price: provider names never hold a '/'. */
export function priceResourceId(provider: string, model: string): string {
  return `${provider}/${model}`;
}

export interface PriceListFilter {
  provider?: string | undefined;
  /** Case-insensitive substring of the model name. */
  search?: string | undefined;
  source?: "default" | "override" | undefined;
  /** Rows after this (provider, model), in that order. */
  after?: { provider: string; model: string } | undefined;
  limit: number;
}

export async function listModelPrices(db: Db, orgId: string, f: PriceListFilter): Promise<ModelPrice[]> {
  let q = db.selectFrom("model_prices").select(COLUMNS).where("org_id", "=", orgId);
  if (f.provider !== undefined) q = q.where("provider", "=", f.provider);
  if (f.source !== undefined) q = q.where("source", "=", f.source);
  if (f.search !== undefined) {
    const pattern = `%${likeLiteral(f.search)}%`;
    q = q.where(sql<boolean>`model ilike ${pattern}`);
  }
  if (f.after) {
    const { provider, model } = f.after;
    q = q.where((eb) =>
      eb.or([eb("provider", ">", provider), eb.and([eb("provider", "=", provider), eb("model", ">", model)])]),
    );
  }
  const rows = await q.orderBy("provider").orderBy("model").limit(f.limit).execute();
  return rows.map(toModelPrice);
}

export async function getModelPrice(
  db: Db,
  orgId: string,
  provider: string,
  model: string,
): Promise<ModelPrice | undefined> {
  const row = await db
    .selectFrom("model_prices")
    .select(COLUMNS)
    .where("org_id", "=", orgId)
    .where("provider", "=", provider)
    .where("model", "=", model)
    .executeTakeFirst();
  return row && toModelPrice(row);
}

/** Every price of the organization, for snapshots and seeding. */
export async function allModelPriceRecords(db: Db, orgId: string): Promise<ModelPriceRecord[]> {
  const rows = await db
    .selectFrom("model_prices")
    .select(COLUMNS)
    .where("org_id", "=", orgId)
    .orderBy("provider")
    .orderBy("model")
    .execute();
  return rows.map(toRecord);
}

/** Inserts or replaces prices (one statement per 500 rows). */
export async function upsertModelPrices(trx: Db, orgId: string, records: ModelPriceRecord[], at: Date): Promise<void> {
  for (let i = 0; i < records.length; i += 500) {
    await trx
      .insertInto("model_prices")
      .values(records.slice(i, i + 500).map((r) => ({ org_id: orgId, ...r, updated_at: at })))
      .onConflict((oc) =>
        oc.columns(["org_id", "provider", "model"]).doUpdateSet((eb) => ({
          input_usd_per_mtok: eb.ref("excluded.input_usd_per_mtok"),
          output_usd_per_mtok: eb.ref("excluded.output_usd_per_mtok"),
          cache_read_usd_per_mtok: eb.ref("excluded.cache_read_usd_per_mtok"),
          cache_write_usd_per_mtok: eb.ref("excluded.cache_write_usd_per_mtok"),
          source: eb.ref("excluded.source"),
          updated_at: eb.ref("excluded.updated_at"),
        })),
      )
      .execute();
  }
}

export async function upsertModelPrice(
  trx: Db,
  orgId: string,
  record: ModelPriceRecord,
  at: Date,
): Promise<ModelPrice> {
  await upsertModelPrices(trx, orgId, [record], at);
  return (await getModelPrice(trx, orgId, record.provider, record.model))!;
}

/** Deletes prices by (provider, model); returns how many existed. */
export async function deleteModelPrices(
  trx: Db,
  orgId: string,
  keys: Array<{ provider: string; model: string }>,
): Promise<number> {
  let n = 0;
  for (const k of keys) {
    const res = await trx
      .deleteFrom("model_prices")
      .where("org_id", "=", orgId)
      .where("provider", "=", k.provider)
      .where("model", "=", k.model)
      .executeTakeFirst();
    n += Number(res.numDeletedRows);
  }
  return n;
}
