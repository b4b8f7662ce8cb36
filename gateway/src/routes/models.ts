import { UpstreamError } from "../providers/types.js";
import { passBuffered, upstreamHttpError } from "./passthrough.js";
import type { RouteHandler } from "./request-record.js";

/** GET /v1/models: the provider's model list. */
export const listModels: RouteHandler = async (ctx, _req, res, rec) => {
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort();
  };
  res.on("close", onClose);
  try {
    const up = await ctx.provider.listModels(abort.signal, rec.requestId);
    await passBuffered(ctx, res, rec, up);
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
