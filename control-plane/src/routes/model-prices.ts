import { AppError } from "@tollgate/shared";
import { z } from "zod";
import type { AppContext } from "../context.js";
import { audit } from "../http/audit.js";
import { decodeCursor, encodeCursor } from "../http/pagination.js";
import { defineRoute, routeGroup } from "../http/route.js";
import { DATASET_NAME, DATASET_VERSION, MODEL_RE, PROVIDER_RE, defaultPriceTable } from "../pricing/default-prices.js";
import type { ModelPriceRecord } from "../repositories/change-log.js";
import {
  deleteModelPrices,
  getModelPrice,
  listModelPrices,
  priceResourceId,
  upsertModelPrice,
  type ModelPrice,
  type PriceValues,
} from "../repositories/model-prices.js";
import { lockOrg } from "../repositories/orgs.js";
import { modelPriceSchema, pageOf } from "./response-schemas.js";
import { writeWithChanges, type WriteScope } from "../changes/write-with-changes.js";
import type { Context } from "koa";

export const provider = z
  .string({ error: "must be a provider kind such as openai or anthropic, or *" })
  .regex(PROVIDER_RE, "must be a provider kind such as openai or anthropic, or * for any provider");

export const model = z
  .string({ error: "must be a model name" })
  .min(1, "must not be empty")
  .max(200, "must be at most 200 characters")
  .regex(
    MODEL_RE,
    "must be a model name (letters, digits, . _ - : / @ +), optionally ending in * for a prefix rule, or * alone",
  );

const usdPerMtok = z
  .number({ error: "must be a number (USD per million tokens)" })
  .min(0, "must be 0 or more")
  .max(1_000_000, "must be at most 1000000 (USD per million tokens)");

const priceBody = z.strictObject({
  input_usd_per_mtok: usdPerMtok,
  output_usd_per_mtok: usdPerMtok,
  cache_read_usd_per_mtok: usdPerMtok.nullable().optional(),
  cache_write_usd_per_mtok: usdPerMtok.nullable().optional(),
});

const listQuery = z.strictObject({
  provider: provider.optional(),
  search: z.string().trim().min(1, "must not be empty").max(200).optional(),
  source: z.enum(["default", "override"]).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(600).optional(),
});

function priceCursor(v: unknown): { provider: string; model: string } | undefined {
  return Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && typeof v[1] === "string"
    ? { provider: v[0], model: v[1] }
    : undefined;
}

function valuesOf({ provider: _provider, model: _model, source: _source, ...values }: ModelPriceRecord): PriceValues {
  return values;
}

// Built once per context: the dataset is bundled, so it cannot change while running.
const defaultTables = new WeakMap<AppContext, Map<string, ModelPriceRecord>>();

function defaultOf(app: AppContext, p: string, m: string): ModelPriceRecord | undefined {
  let table = defaultTables.get(app);
  if (!table) defaultTables.set(app, (table = defaultPriceTable(app.now())));
  return table.get(priceResourceId(p, m));
}

/** A row as shown: with the dataset's price it would fall back to, if any. */
function shown(app: AppContext, r: ModelPrice) {
  const d = defaultOf(app, r.provider, r.model);
  return { ...r, default: d ? valuesOf(d) : null };
}

/** The path's provider and model; a 400 names which one is wrong. */
const target = z.object({ provider, model });
/** The route of one price, by provider and model. */
const onePrice = { path: "/internal/model-prices/:provider/*model", params: target };

/**
 * Runs `fn` in a write given the price as it was; the lock serializes it with default seeding
 * (see seedDefaultPrices). The revision written goes out in x-tollgate-revision.
 */
async function writePrice<T>(
  app: AppContext,
  ctx: Context,
  orgId: string,
  t: { provider: string; model: string },
  fn: (scope: WriteScope, before: ModelPrice | undefined) => Promise<T>,
): Promise<T> {
  const { result, revision } = await writeWithChanges(app, orgId, async (scope) => {
    await lockOrg(scope.trx, orgId);
    return fn(scope, await getModelPrice(scope.trx, orgId, t.provider, t.model));
  });
  if (revision !== null) ctx.set("x-tollgate-revision", String(revision));
  return result;
}

function auditPrice(
  ctx: Parameters<typeof audit>[1],
  scope: WriteScope,
  action: string,
  id: string,
  before: unknown,
  after: unknown,
) {
  return audit(scope, ctx, {
    action,
    targetType: "model_price",
    targetId: id,
    before: before ?? null,
    after: after ?? null,
  });
}

/**
 * The price table: defaults seeded from the bundled dataset, overrides set
 * here. A model name may hold '/', ':' and '.': the path takes everything after
 * the provider, with the slashes as they are or encoded as %2F, e.g.
 * PUT /internal/model-prices/openai/ft:gpt-4o:acme or
 * PUT /internal/model-prices/openai/openai%2Fgpt-oss-120b.
 */
export const modelPriceRoutes = routeGroup("model-prices", [
  defineRoute({
    method: "get",
    path: "/internal/model-prices",
    response: {
      schema: pageOf(modelPriceSchema).extend({ dataset: z.object({ name: z.string(), version: z.string() }) }),
    },
    query: listQuery,
    async handler({ ctx, orgId, query }, app) {
      const q = query();
      const rows = await listModelPrices(app.db, orgId, {
        provider: q.provider,
        search: q.search,
        source: q.source,
        after: q.cursor ? decodeCursor(q.cursor, priceCursor) : undefined,
        limit: q.limit,
      });
      ctx.body = {
        data: rows.map((r) => shown(app, r)),
        next_cursor:
          rows.length === q.limit
            ? encodeCursor([rows[rows.length - 1]!.provider, rows[rows.length - 1]!.model])
            : null,
        dataset: { name: DATASET_NAME, version: DATASET_VERSION },
      };
    },
  }),
  defineRoute({
    method: "get",
    ...onePrice,
    response: { schema: modelPriceSchema },
    async handler({ ctx, orgId, params }, app) {
      const t = params();
      const row = await getModelPrice(app.db, orgId, t.provider, t.model);
      if (!row) throw new AppError("not_found", `no price for ${t.provider} model ${t.model}`, { field: "model" });
      ctx.body = shown(app, row);
    },
  }),
  defineRoute({
    method: "put",
    ...onePrice,
    response: { schema: modelPriceSchema, description: "Updated (201 when the override is new)" },
    body: priceBody,
    async handler({ ctx, orgId, params, body }, app) {
      const t = params();
      const input = await body();
      const id = priceResourceId(t.provider, t.model);
      const record: ModelPriceRecord = {
        ...t,
        input_usd_per_mtok: input.input_usd_per_mtok,
        output_usd_per_mtok: input.output_usd_per_mtok,
        cache_read_usd_per_mtok: input.cache_read_usd_per_mtok ?? null,
        cache_write_usd_per_mtok: input.cache_write_usd_per_mtok ?? null,
        source: "override",
      };
      const result = await writePrice(app, ctx, orgId, t, async (scope, before) => {
        const { trx, emit } = scope;
        const after = await upsertModelPrice(trx, orgId, record, app.now());
        emit({ kind: "model_price_upsert", resourceId: id, payload: record });
        await auditPrice(ctx, scope, "model_price.override", id, before, after);
        return { row: after, created: before === undefined };
      });
      ctx.status = result.created ? 201 : 200;
      ctx.body = shown(app, result.row);
    },
  }),
  defineRoute({
    method: "delete",
    ...onePrice,
    response: {
      schema: z.object({
        provider: z.string(),
        model: z.string(),
        deleted: z.literal(true),
        restored_default: modelPriceSchema.nullable(),
      }),
    },
    async handler({ ctx, orgId, params }, app) {
      const t = params();
      const id = priceResourceId(t.provider, t.model);
      const fallback = defaultOf(app, t.provider, t.model);
      const result = await writePrice(app, ctx, orgId, t, async (scope, before) => {
        const { trx, emit } = scope;
        if (before?.source !== "override") {
          throw new AppError(
            "not_found",
            before
              ? `${t.provider} model ${t.model} has no override: its price is the dataset's default`
              : `no price for ${t.provider} model ${t.model}`,
            { field: "model" },
          );
        }
        if (fallback) {
          // The dataset's price takes over again.
          const restored = await upsertModelPrice(trx, orgId, fallback, app.now());
          emit({ kind: "model_price_upsert", resourceId: id, payload: fallback });
          await auditPrice(ctx, scope, "model_price.delete_override", id, before, restored);
          return restored;
        }
        await deleteModelPrices(trx, orgId, [t]);
        emit({ kind: "model_price_delete", resourceId: id, payload: t });
        await auditPrice(ctx, scope, "model_price.delete_override", id, before, null);
        return null;
      });
      ctx.body = { ...t, deleted: true, restored_default: result ? shown(app, result) : null };
    },
  }),
]);
