import Router from "@koa/router";
import { AppError } from "@tollgate/shared";
import type { Context } from "koa";
import { z } from "zod";
import type { AppContext } from "../context.js";
import { queryObject, readJsonObject, validate } from "../http/body.js";
import { DATASET_NAME, DATASET_VERSION, MODEL_RE, PROVIDER_RE, defaultPriceTable } from "../pricing/default-prices.js";
import { recordAudit } from "../repositories/audit-log.js";
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
import { writeWithChanges } from "../changes/write-with-changes.js";

export const provider = z
  .string({ error: "must be a provider kind such as openai or anthropic, or *" })
  .regex(PROVIDER_RE, "must be a provider kind such as openai or anthropic, or * for any provider");

export const model = z
  .string({ error: "must be a model name" })
  .min(1, "must not be empty")
  .max(200, "must be at most 200 characters")
  .regex(MODEL_RE, "must be a model name (letters, digits, . _ - : / @ +), optionally ending in * for a prefix rule, or * alone");

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

function encodeCursor(p: { provider: string; model: string }): string {
  return Buffer.from(JSON.stringify([p.provider, p.model])).toString("base64url");
}

function decodeCursor(raw: string): { provider: string; model: string } {
  try {
    const v = JSON.parse(Buffer.from(raw, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && typeof v[1] === "string") return { provider: v[0], model: v[1] };
  } catch {
    // fall through
  }
  throw new AppError("invalid_request", "cursor is not one this API returned: pass next_cursor unchanged", { field: "cursor" });
}

function valuesOf(r: PriceValues): PriceValues {
  return {
    input_usd_per_mtok: r.input_usd_per_mtok,
    output_usd_per_mtok: r.output_usd_per_mtok,
    cache_read_usd_per_mtok: r.cache_read_usd_per_mtok,
    cache_write_usd_per_mtok: r.cache_write_usd_per_mtok,
  };
}

/**
 * The price table: defaults seeded from the bundled dataset, overrides set
 * here. A model name may hold '/', ':' and '.': the path takes everything after
 * the provider, with the slashes as they are or encoded as %2F, e.g.
 * PUT /internal/model-prices/openai/ft:gpt-4o:acme or
 * PUT /internal/model-prices/openai/openai%2Fgpt-oss-120b.
 */
export function modelPriceRoutes(app: AppContext): Router {
  const router = new Router();
  // Built once: the dataset is bundled, so it cannot change while running.
  let defaults: Map<string, ModelPriceRecord> | undefined;
  const defaultOf = (p: string, m: string): ModelPriceRecord | undefined => (defaults ??= defaultPriceTable(app.now())).get(priceResourceId(p, m));

  /** A row as shown: with the dataset's price it would fall back to, if any. */
  const shown = (r: ModelPrice) => {
    const d = defaultOf(r.provider, r.model);
    return { ...r, default: d ? valuesOf(d) : null };
  };

  const targetSchema = z.object({ provider, model });
  /** The path's provider and model; a 400 names which one is wrong. */
  function target(ctx: Context): { provider: string; model: string } {
    return validate(targetSchema, { provider: ctx.params.provider, model: ctx.params.model });
  }

  async function audit(ctx: Context, trx: AppContext["db"], action: string, id: string, before: unknown, after: unknown) {
    await recordAudit(trx, {
      orgId: ctx.state.orgId,
      actor: ctx.state.actor,
      action,
      targetType: "model_price",
      targetId: id,
      before: (before as Record<string, unknown>) ?? null,
      after: (after as Record<string, unknown>) ?? null,
      requestId: ctx.state.requestId,
    });
  }

  router.get("/internal/model-prices", async (ctx) => {
    const q = validate(listQuery, queryObject(ctx));
    const rows = await listModelPrices(app.db, ctx.state.orgId, {
      provider: q.provider,
      search: q.search,
      source: q.source,
      after: q.cursor ? decodeCursor(q.cursor) : undefined,
      limit: q.limit,
    });
    ctx.body = {
      data: rows.map(shown),
      next_cursor: rows.length === q.limit ? encodeCursor(rows[rows.length - 1]!) : null,
      dataset: { name: DATASET_NAME, version: DATASET_VERSION },
    };
  });

  router.get("/internal/model-prices/:provider/*model", async (ctx) => {
    const t = target(ctx);
    const row = await getModelPrice(app.db, ctx.state.orgId, t.provider, t.model);
    if (!row) throw new AppError("not_found", `no price for ${t.provider} model ${t.model}`, { field: "model" });
    ctx.body = shown(row);
  });

  router.put("/internal/model-prices/:provider/*model", async (ctx) => {
    const t = target(ctx);
    const input = validate(priceBody, await readJsonObject(ctx, app.config.maxBodyBytes));
    const orgId: string = ctx.state.orgId;
    const id = priceResourceId(t.provider, t.model);
    const record: ModelPriceRecord = {
      ...t,
      input_usd_per_mtok: input.input_usd_per_mtok,
      output_usd_per_mtok: input.output_usd_per_mtok,
      cache_read_usd_per_mtok: input.cache_read_usd_per_mtok ?? null,
      cache_write_usd_per_mtok: input.cache_write_usd_per_mtok ?? null,
      source: "override",
    };
    const { result, revision } = await writeWithChanges(app, orgId, async ({ trx, emit }) => {
      // Serializes with default seeding (see seedDefaultPrices).
      await lockOrg(trx, orgId);
      const before = await getModelPrice(trx, orgId, t.provider, t.model);
      const after = await upsertModelPrice(trx, orgId, record, app.now());
      emit({ kind: "model_price_upsert", resourceId: id, payload: record });
      await audit(ctx, trx, "model_price.override", id, before, after);
      return { row: after, created: before === undefined };
    });
    if (revision !== null) ctx.set("x-tollgate-revision", String(revision));
    ctx.status = result.created ? 201 : 200;
    ctx.body = shown(result.row);
  });

  router.delete("/internal/model-prices/:provider/*model", async (ctx) => {
    const t = target(ctx);
    const orgId: string = ctx.state.orgId;
    const id = priceResourceId(t.provider, t.model);
    const fallback = defaultOf(t.provider, t.model);
    const { result, revision } = await writeWithChanges(app, orgId, async ({ trx, emit }) => {
      await lockOrg(trx, orgId);
      const before = await getModelPrice(trx, orgId, t.provider, t.model);
      if (before?.source !== "override") {
        throw new AppError(
          "not_found",
          before ? `${t.provider} model ${t.model} has no override: its price is the dataset's default` : `no price for ${t.provider} model ${t.model}`,
          { field: "model" },
        );
      }
      if (fallback) {
        // The dataset's price takes over again.
        const restored = await upsertModelPrice(trx, orgId, fallback, app.now());
        emit({ kind: "model_price_upsert", resourceId: id, payload: fallback });
        await audit(ctx, trx, "model_price.delete_override", id, before, restored);
        return restored;
      }
      await deleteModelPrices(trx, orgId, [t]);
      emit({ kind: "model_price_delete", resourceId: id, payload: t });
      await audit(ctx, trx, "model_price.delete_override", id, before, null);
      return null;
    });
    if (revision !== null) ctx.set("x-tollgate-revision", String(revision));
    ctx.body = { ...t, deleted: true, restored_default: result ? shown(result) : null };
  });

  return router;
}
