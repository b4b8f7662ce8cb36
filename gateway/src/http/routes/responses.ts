import type { IncomingMessage, ServerResponse } from "node:http";
import type { KeyRecord } from "../../auth/key-index.js";
import { checkProvider } from "../../auth/policy.js";
import type { AppContext } from "../../context.js";
import { LightSignal } from "../../providers/light-signal.js";
import {
  UpstreamError,
  type Provider,
  type ProviderResponse,
  type ResponseResourceCall,
} from "../../providers/types.js";
import { modelOfBuffer, usageOfBuffer } from "../../providers/usage.js";
import { settleQuota } from "../4-quota-gate.js";
import { passBuffered, passStreaming, upstreamHttpError } from "../5-forward.js";
import type { RequestRecord } from "../6-request-record.js";
import { HttpError } from "../errors.js";
import type { RouteHandler } from "../route.js";

/**
 * The Responses API's stored responses (retrieve, delete, cancel, input
 * items), each readable only by the key that created it, on any gateway.
 *
 * Ownership lives with the response itself: on create the gateway sets
 * `metadata.tollgate_key_id` to the key's id (overwriting any value the
 * client sent), and a later call first retrieves the response from the
 * providers the key may use and checks that member. The upstream stores it
 * and no API lets a client change it afterwards, so every gateway of the
 * fleet reaches the same answer with no shared state and nothing secret in
 * it (a key id is not a credential). A response of another key, or one made
 * without the gateway, is answered 404 as if it did not exist.
 */
export const OWNER_METADATA_KEY = "tollgate_key_id";

/** The create body with the owner set in its metadata. */
export function withOwner(json: Record<string, unknown>, key: KeyRecord): Record<string, unknown> {
  const metadata =
    json.metadata !== null && typeof json.metadata === "object" && !Array.isArray(json.metadata)
      ? (json.metadata as Record<string, unknown>)
      : {};
  return { ...json, metadata: { ...metadata, [OWNER_METADATA_KEY]: key.id } };
}

const notFound = (id: string, param: string | null) =>
  new HttpError(
    404,
    `No response found with id '${id.slice(0, 200)}'.`,
    "invalid_request_error",
    "response_not_found",
    param,
  );

async function readAll(up: ProviderResponse): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of up.body) chunks.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  return Buffer.concat(chunks);
}

/** A stored response the key owns: the provider holding it and the upstream's answer to retrieving it. */
export interface Owned {
  provider: Provider;
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  response: { status?: unknown; background?: unknown; metadata?: Record<string, unknown> | null };
}

function call(
  req: IncomingMessage | null,
  rec: RequestRecord,
  method: ResponseResourceCall["method"],
  suffix: string,
  stream = false,
): ResponseResourceCall {
  return { method, suffix, requestId: rec.requestId, signal: new LightSignal(), headers: req?.headers ?? {}, stream };
}

/**
 * Finds response `id` among the providers the key may use that serve the
 * Responses API, and checks its owner. Throws 404 when no provider holds it
 * for this key; an upstream failure (5xx, unreachable) is answered as such.
 */
export async function ownedResponse(
  ctx: AppContext,
  key: KeyRecord,
  rec: RequestRecord,
  id: string,
  param: string | null = null,
  req: IncomingMessage | null = null,
): Promise<Owned> {
  const candidates = ctx.providers.providers.filter(
    (p) => p.responseResource !== undefined && checkProvider(key, p.name) === null,
  );
  // A provider that cannot answer may hold it: said so only when no other one does.
  let failure: HttpError | null = null;
  for (const provider of candidates) {
    let up: ProviderResponse;
    let body: Buffer;
    try {
      up = await provider.responseResource!(call(req, rec, "GET", `/${encodeURIComponent(id)}`));
      body = await readAll(up);
    } catch (err) {
      if (!(err instanceof UpstreamError)) throw err;
      failure ??= upstreamHttpError(ctx, provider.name, err, rec);
      continue;
    }
    if (up.status === 404) continue;
    if (up.status >= 300) {
      failure ??= new HttpError(
        up.status >= 500 ? 502 : up.status,
        `The provider '${provider.name}' could not look up response '${id.slice(0, 200)}' (HTTP ${up.status}).`,
        "server_error",
        "upstream_error",
        param,
      );
      continue;
    }
    let response: Owned["response"];
    try {
      response = JSON.parse(body.toString("utf8")) as Owned["response"];
    } catch {
      continue;
    }
    if (response?.metadata?.[OWNER_METADATA_KEY] !== key.id) continue;
    rec.provider = provider.name;
    rec.error = null;
    return { provider, status: up.status, headers: up.headers, body, response };
  }
  if (failure !== null) throw failure;
  throw notFound(id, param);
}

/** The response id and what follows it, from /v1/responses/{id}[/cancel|/input_items]. */
function idOf(req: IncomingMessage): { id: string; rest: string; query: string } {
  const url = req.url ?? "";
  const q = url.indexOf("?");
  const path = q === -1 ? url : url.slice(0, q);
  const [, , , raw = "", ...rest] = path.replace(/\/$/, "").split("/");
  let id = raw;
  try {
    id = decodeURIComponent(raw);
  } catch {
    // Left as sent: no provider will hold it.
  }
  return { id, rest: rest.length > 0 ? `/${rest.join("/")}` : "", query: q === -1 ? "" : url.slice(q) };
}

/** Per gateway, ids of background responses whose usage it counted: a later retrieval must not count it again. */
const countedBy = new WeakMap<AppContext, Set<string>>();
const MAX_COUNTED = 100_000;

/**
 * A background response is billed when it ends, not when created: its
 * usage is counted on the first retrieval that shows it finished, once per
 * gateway (gateway/README.md, "Responses API: who may read a stored response").
 */
function countBackgroundUsage(
  ctx: AppContext,
  key: KeyRecord,
  rec: RequestRecord,
  id: string,
  owned: Owned,
): Promise<void> | undefined {
  const status = owned.response.status;
  let counted = countedBy.get(ctx);
  if (counted === undefined) countedBy.set(ctx, (counted = new Set()));
  if (
    owned.response.background !== true ||
    (status !== "completed" && status !== "incomplete" && status !== "failed") ||
    counted.has(id)
  )
    return undefined;
  const usage = usageOfBuffer("openai", owned.body);
  if (usage === null) return undefined;
  // Bounded: past it, a response retrieved again long after may be counted twice.
  if (counted.size >= MAX_COUNTED) counted.clear();
  counted.add(id);
  rec.usage = usage;
  rec.model = modelOfBuffer(owned.body);
  return settleQuota(ctx, key, owned.provider, null, rec);
}

/** Calls a sub-resource of an owned response and passes the answer on (streamed when asked for). */
async function passResource(
  ctx: AppContext,
  res: ServerResponse,
  rec: RequestRecord,
  owned: Owned,
  c: ResponseResourceCall,
): Promise<void> {
  let up: ProviderResponse;
  try {
    up = await owned.provider.responseResource!(c);
  } catch (err) {
    if (err instanceof UpstreamError) throw upstreamHttpError(ctx, owned.provider.name, err, rec);
    throw err;
  }
  const opts = { provider: owned.provider.name, usage: "openai" as const };
  const countedUsage = rec.usage;
  if (c.stream && up.status < 300) await passStreaming(ctx, res, rec, up, opts);
  else await passBuffered(ctx, res, rec, up, opts);
  // A retrieval's usage is the creation's: only countBackgroundUsage counts it, once.
  rec.usage = countedUsage;
}

/** GET /v1/responses/{id}: the stored response (or its stream, resumed with ?stream=true&starting_after=n). */
export const retrieveResponse: RouteHandler = async (ctx, req, res, rec, key) => {
  const { id, query } = idOf(req);
  const owned = await ownedResponse(ctx, key, rec, id, null, req);
  // Journaled before any byte of the answer, as every usage the gateway counts.
  const journaled = countBackgroundUsage(ctx, key, rec, id, owned);
  if (journaled) await journaled;
  const stream = new URLSearchParams(query).get("stream") === "true";
  rec.stream = stream;
  if (query === "") {
    res.writeHead(owned.status, {
      ...owned.headers,
      "content-type": "application/json",
      "content-length": owned.body.length,
    });
    res.end(owned.body);
    return;
  }
  await passResource(ctx, res, rec, owned, call(req, rec, "GET", `/${encodeURIComponent(id)}${query}`, stream));
};

/** DELETE /v1/responses/{id}. */
export const deleteResponse: RouteHandler = async (ctx, req, res, rec, key) => {
  const { id } = idOf(req);
  const owned = await ownedResponse(ctx, key, rec, id, null, req);
  await passResource(ctx, res, rec, owned, call(req, rec, "DELETE", `/${encodeURIComponent(id)}`));
};

/** POST /v1/responses/{id}/cancel (background responses). */
export const cancelResponse: RouteHandler = async (ctx, req, res, rec, key) => {
  const { id } = idOf(req);
  req.resume(); // no body is expected: drain whatever came
  const owned = await ownedResponse(ctx, key, rec, id, null, req);
  await passResource(ctx, res, rec, owned, call(req, rec, "POST", `/${encodeURIComponent(id)}/cancel`));
};

/** GET /v1/responses/{id}/input_items, with its paging query. */
export const listInputItems: RouteHandler = async (ctx, req, res, rec, key) => {
  const { id, query } = idOf(req);
  const owned = await ownedResponse(ctx, key, rec, id, null, req);
  await passResource(ctx, res, rec, owned, call(req, rec, "GET", `/${encodeURIComponent(id)}/input_items${query}`));
};
