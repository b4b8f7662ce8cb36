import type { KeyRecord } from "../auth/key-index.js";
import { modelAllowed } from "../auth/model-matcher.js";
import { UpstreamError } from "../providers/types.js";
import { passBuffered, upstreamHttpError } from "./passthrough.js";
import type { RouteHandler } from "./request-record.js";

/**
 * Keeps only the models `key` may use in an OpenAI model list. An answer
 * that is not such a list becomes an empty one: a restricted key must not
 * learn model names through a shape the gateway cannot filter.
 */
export function filterModelList(body: Buffer, key: KeyRecord): Buffer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    parsed = undefined;
  }
  const list = parsed as { data?: unknown } | null | undefined;
  if (!list || typeof list !== "object" || !Array.isArray(list.data)) {
    return Buffer.from(JSON.stringify({ object: "list", data: [] }));
  }
  list.data = list.data.filter((m: unknown) => {
    const id = (m as { id?: unknown } | null)?.id;
    return typeof id === "string" && modelAllowed(key.allowedModels, id);
  });
  return Buffer.from(JSON.stringify(list));
}

/** GET /v1/models: the provider's model list, narrowed to the key's allowed_models. */
export const listModels: RouteHandler = async (ctx, _req, res, rec, key) => {
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort();
  };
  res.on("close", onClose);
  try {
    const up = await ctx.provider.listModels(abort.signal, rec.requestId);
    await passBuffered(ctx, res, rec, up, key.allowedModels === null ? undefined : (body) => filterModelList(body, key));
  } catch (err) {
    if (abort.signal.aborted) {
      rec.error = "client_closed";
      return;
    }
    if (err instanceof UpstreamError) throw upstreamHttpError(ctx, err, rec);
    throw err;
  } finally {
    res.off("close", onClose);
  }
};
