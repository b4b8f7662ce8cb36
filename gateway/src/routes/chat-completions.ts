import type { AppContext } from "../context.js";
import { UpstreamError } from "../providers/types.js";
import { checkModel } from "../auth/policy.js";
import { MAX_JSON_DEPTH } from "../config.js";
import { HttpError, PolicyDeniedError, jsonDepthExceeds, readBody } from "./http.js";
import { passBuffered, passStreaming, upstreamHttpError } from "./passthrough.js";
import type { RouteHandler } from "./request-record.js";

const MAX_LOGGED_MODEL = 200;

/** Parses once and checks only what the gateway itself needs. */
function parseChatBody(ctx: AppContext, body: Buffer): Record<string, unknown> {
  // A cheap byte scan first: a pathologically nested body never reaches the
  // parser, nor the upstream that would parse it again.
  if (jsonDepthExceeds(body, MAX_JSON_DEPTH)) {
    ctx.metrics.rejectedRequest("json_too_deep");
    throw new HttpError(
      400,
      `The JSON body is nested more than ${MAX_JSON_DEPTH} levels deep, this gateway's limit. Send a flatter request.`,
      "invalid_request_error",
      "json_too_deep",
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    // The parser's message quotes the body, which may hold secrets: keep it out.
    throw new HttpError(
      400,
      "We could not parse the JSON body of your request. Send a JSON object with 'Content-Type: application/json'.",
      "invalid_request_error",
      "invalid_json",
    );
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new HttpError(400, "The request body must be a JSON object.", "invalid_request_error", "invalid_json");
  }
  const obj = json as Record<string, unknown>;
  if (typeof obj.model !== "string" || obj.model === "") {
    throw new HttpError(
      400,
      "Missing required parameter: 'model'. Set it to the model to call, e.g. \"gpt-4o-mini\".",
      "invalid_request_error",
      "missing_required_parameter",
      "model",
    );
  }
  return obj;
}

/** POST /v1/chat/completions: forwards the client's original bytes. */
export const chatCompletions: RouteHandler = async (ctx: AppContext, req, res, rec, key) => {
  const body = await readBody(req, ctx.config.maxBodyBytes);
  const json = parseChatBody(ctx, body);
  const model = json.model as string;
  rec.model = model.slice(0, MAX_LOGGED_MODEL);
  rec.stream = json.stream === true;
  const denial = checkModel(key, model);
  if (denial) throw new PolicyDeniedError(denial, rec.model);

  // The client leaving aborts the upstream call (and its billing) too.
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort();
  };
  res.on("close", onClose);

  let up;
  try {
    up = await ctx.provider.chatCompletions({ body, json, stream: rec.stream, requestId: rec.requestId, signal: abort.signal });
  } catch (err) {
    if (abort.signal.aborted) {
      rec.error = "client_closed";
      return;
    }
    if (err instanceof UpstreamError) throw upstreamHttpError(ctx, err, rec);
    throw err;
  }
  try {
    if (rec.stream && up.status < 300) await passStreaming(ctx, res, rec, up);
    else await passBuffered(ctx, res, rec, up);
  } catch (err) {
    if (abort.signal.aborted) {
      rec.error = "client_closed";
      return;
    }
    if (err instanceof UpstreamError) throw upstreamHttpError(ctx, err, rec);
    throw err;
  } finally {
    res.off("close", onClose);
    if (abort.signal.aborted && !rec.error) rec.error = "client_closed";
  }
};
