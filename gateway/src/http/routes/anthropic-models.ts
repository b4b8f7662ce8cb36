import type { KeyRecord } from "../../auth/key-index.js";
import { modelAllowed } from "../../auth/model-matcher.js";
import { checkProvider } from "../../auth/policy.js";
import type { AppContext } from "../../context.js";
import { UpstreamError, UpstreamStatusError } from "../../providers/types.js";
import type { RequestRecord } from "../6-request-record.js";
import { HttpError, errors } from "../errors.js";
import { modelIdOf } from "../models-route.js";
import { sendJson } from "../respond.js";
import type { RouteHandler } from "../route.js";

/** An entry of Anthropic's model list, as its SDKs parse it. */
interface AnthropicModel {
  type: "model";
  id: string;
  display_name: string;
  created_at: string;
}

/** For models the providers file names: no upstream says when they appeared. */
const UNKNOWN_CREATED_AT = "1970-01-01T00:00:00Z";
const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 1000;

/**
 * The models an Anthropic client may call with this key: each provider
 * serving /v1/messages that the key may use contributes its configured
 * names and its upstream's own list, narrowed to allowed_models. A failing
 * upstream list is logged and left out, unless it was the only source.
 */
async function anthropicModels(ctx: AppContext, key: KeyRecord, rec: RequestRecord): Promise<AnthropicModel[]> {
  const registry = ctx.providers;
  const usable = registry.providers.filter((p) => p.endpoints.has("messages") && checkProvider(key, p.name) === null);
  const entries: AnthropicModel[] = usable.flatMap((p) =>
    registry
      .modelsOf(p)
      .map((id): AnthropicModel => ({ type: "model", id, display_name: id, created_at: UNKNOWN_CREATED_AT })),
  );
  const listed = usable.filter((p) => p.listNativeModels !== undefined);
  let failure: unknown = null;
  for (const p of listed) {
    try {
      for (const m of await registry.modelLists.of(p, rec.requestId)) {
        entries.push({
          type: "model",
          id: m.id,
          display_name: m.displayName ?? m.id,
          created_at: m.createdAt ?? UNKNOWN_CREATED_AT,
        });
      }
    } catch (err) {
      failure = err;
      ctx.metrics.upstreamError(
        p.name,
        err instanceof UpstreamError
          ? err.reason
          : err instanceof UpstreamStatusError
            ? err.status >= 500
              ? "http_5xx"
              : "http_4xx"
            : "invalid_response",
      );
      ctx.logger.warn(
        { provider: p.name, err: (err as Error).message, requestId: rec.requestId },
        "provider model list failed; left out of /v1/models",
      );
    }
  }
  if (failure !== null && entries.length === 0 && listed.length === usable.length) {
    rec.error = "upstream_model_list";
    throw failure instanceof UpstreamError
      ? errors.upstreamFailed(failure.status, failure.message, failure.reason === "timeout")
      : errors.upstreamFailed(502, (failure as Error).message, false);
  }
  const seen = new Set<string>();
  return entries.filter((m) => {
    if (seen.has(m.id) || !modelAllowed(key.allowedModels, m.id)) return false;
    seen.add(m.id);
    return true;
  });
}

/** A query parameter as a string, or undefined. */
function param(url: URL, name: string): string | undefined {
  const v = url.searchParams.get(name);
  return v === null || v === "" ? undefined : v;
}

/**
 * GET /v1/models from an Anthropic client (it sends anthropic-version):
 * Anthropic's page shape (`data`, `has_more`, `first_id`, `last_id`) with
 * its `limit`, `after_id` and `before_id`, so the SDK's auto-pagination works.
 */
export const listAnthropicModels: RouteHandler = async (ctx, req, res, rec, key) => {
  const all = await anthropicModels(ctx, key, rec);
  const url = new URL(req.url ?? "/", "http://gateway");
  const rawLimit = param(url, "limit");
  const limit = rawLimit === undefined ? DEFAULT_LIMIT : Number(rawLimit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new HttpError(
      400,
      `limit: must be an integer from 1 to ${MAX_LIMIT}.`,
      "invalid_request_error",
      "invalid_parameter",
      "limit",
    );
  }
  const after = param(url, "after_id");
  const before = param(url, "before_id");
  let start = 0;
  let end = all.length;
  if (after !== undefined) start = all.findIndex((m) => m.id === after) + 1;
  if (before !== undefined) {
    const i = all.findIndex((m) => m.id === before);
    end = i === -1 ? all.length : i;
    start = Math.max(start, end - limit);
  }
  const data = all.slice(start, Math.min(end, start + limit));
  sendJson(res, 200, {
    data,
    has_more: start + data.length < end || (before !== undefined && start > 0),
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
  });
};

/** GET /v1/models/{id} from an Anthropic client: the entry, or 404 not_found_error. */
export const retrieveAnthropicModel: RouteHandler = async (ctx, req, res, rec, key) => {
  const id = modelIdOf(req.url);
  rec.model = id.slice(0, 200);
  const found = modelAllowed(key.allowedModels, id)
    ? (await anthropicModels(ctx, key, rec)).find((m) => m.id === id)
    : undefined;
  if (!found) throw errors.modelNotFound(id);
  sendJson(res, 200, found);
};
