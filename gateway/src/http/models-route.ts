import type { KeyRecord } from "../auth/key-index.js";
import { modelAllowed } from "../auth/model-matcher.js";
import { checkProvider } from "../auth/policy.js";
import type { AppContext } from "../context.js";
import { UpstreamError, type Provider, type ProviderResponse } from "../providers/types.js";
import type { RequestRecord } from "./6-request-record.js";
import { sendJson } from "./respond.js";
import { errors } from "./errors.js";
import { passBuffered, upstreamHttpError } from "./5-forward.js";
import type { RouteHandler } from "./route.js";

/**
 * Keeps only the models `key` may use in an OpenAI model list. An answer
 * that is not such a list becomes an empty one: a restricted key must not
 * learn model names through a shape the gateway cannot filter.
 */
function filterModelList(body: Buffer, key: KeyRecord): Buffer {
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

async function readAll(up: ProviderResponse): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of up.body) chunks.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  return Buffer.concat(chunks);
}

type ModelEntry = { id: string } & Record<string, unknown>;

/**
 * GET /v1/models: the union of the models of every provider the key may use,
 * narrowed to its allowed_models. A provider contributes its explicit model
 * list and, when it also serves patterns and has a model list upstream (the
 * OpenAI kinds, the mock), the upstream's entries that route to it. When a
 * single upstream list is the only source, its answer (or failure) passes
 * through as is; with several, one that fails is logged and left out.
 */
export const listModels: RouteHandler = async (ctx, _req, res, rec, key) => {
  const registry = ctx.providers;
  const usable = registry.providers.filter((p) => checkProvider(key, p.name) === null);
  if (usable.length === 1) rec.provider = usable[0]!.name;
  if (usable.length === 0) throw errors.policyDenied(checkProvider(key, registry.providers[0]!.name)!);

  const fetched = usable.filter((p) => p.listModels !== undefined && registry.hasPatterns(p));
  const explicit = usable.flatMap((p) =>
    registry.modelsOf(p).map((id): ModelEntry => ({ id, object: "model", created: 0, owned_by: p.name })),
  );

  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort();
  };
  res.on("close", onClose);
  try {
    if (fetched.length === 1 && explicit.length === 0) {
      const only = fetched[0]!;
      const up = await only.listModels!(abort.signal, rec.requestId);
      await passBuffered(ctx, res, rec, up, {
        provider: only.name,
        usage: "openai",
        transform: (body) => filterModelList(filterRouted(body, registry, only), key),
      });
      return;
    }
    const entries = await gatherModels(ctx, rec, fetched, explicit, abort.signal);
    if (abort.signal.aborted) {
      rec.error = "client_closed";
      return;
    }
    sendJson(res, 200, { object: "list", data: allowedOnce(entries, key) });
  } catch (err) {
    if (abort.signal.aborted) {
      rec.error = "client_closed";
      return;
    }
    if (err instanceof UpstreamError) throw upstreamHttpError(ctx, fetched[0]?.name ?? "unknown", err, rec);
    throw err;
  } finally {
    res.off("close", onClose);
  }
};

/** The entries `key` may use, each id once (the first source wins). */
function allowedOnce(entries: readonly ModelEntry[], key: KeyRecord): ModelEntry[] {
  const seen = new Set<string>();
  return entries.filter((m) => {
    if (seen.has(m.id) || !modelAllowed(key.allowedModels, m.id)) return false;
    seen.add(m.id);
    return true;
  });
}

/** The explicit entries, then each fetched provider's list of the models it routes; a failing list is logged and left out. */
async function gatherModels(
  ctx: AppContext,
  rec: RequestRecord,
  fetched: readonly Provider[],
  explicit: readonly ModelEntry[],
  signal: AbortSignal,
): Promise<ModelEntry[]> {
  const registry = ctx.providers;
  const entries: ModelEntry[] = [...explicit];
  await Promise.all(
    fetched.map(async (p) => {
      try {
        const up = await p.listModels!(signal, rec.requestId);
        const body = await readAll(up);
        if (up.status >= 300) {
          ctx.metrics.upstreamError(p.name, up.status >= 500 ? "http_5xx" : "http_4xx");
          ctx.logger.warn(
            { provider: p.name, status: up.status, requestId: rec.requestId },
            "provider model list failed; left out of /v1/models",
          );
          return;
        }
        const data = (JSON.parse(filterRouted(body, registry, p).toString("utf8")) as { data: ModelEntry[] }).data;
        entries.push(...data);
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof UpstreamError) ctx.metrics.upstreamError(p.name, err.reason);
        else ctx.metrics.upstreamError(p.name, "invalid_response");
        ctx.logger.warn(
          { provider: p.name, err: (err as Error).message, requestId: rec.requestId },
          "provider model list failed; left out of /v1/models",
        );
      }
    }),
  );
  return entries;
}

/** The model id of a /v1/models/{id} path (ids may hold slashes: `anthropic/claude-…`). */
export function modelIdOf(url: string | undefined): string {
  const path = (url ?? "").split("?")[0]!;
  const raw = path.slice("/v1/models/".length).replace(/\/$/, "");
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/**
 * GET /v1/models/{id} in OpenAI's shape: the entry /v1/models would list
 * for this key, or 404 model_not_found (a model the key may not use is not
 * revealed).
 */
export const retrieveModel: RouteHandler = async (ctx, req, res, rec, key) => {
  const id = modelIdOf(req.url);
  rec.model = id.slice(0, 200);
  const registry = ctx.providers;
  const usable = registry.providers.filter((p) => checkProvider(key, p.name) === null);
  if (!modelAllowed(key.allowedModels, id) || usable.length === 0) throw errors.modelNotFound(id);
  const explicit = usable.flatMap((p) =>
    registry.modelsOf(p).map((m): ModelEntry => ({ id: m, object: "model", created: 0, owned_by: p.name })),
  );
  const found = explicit.find((m) => m.id === id);
  if (found) {
    sendJson(res, 200, found);
    return;
  }
  const fetched = usable.filter((p) => p.listModels !== undefined && registry.hasPatterns(p));
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort();
  };
  res.on("close", onClose);
  try {
    const entry = (await gatherModels(ctx, rec, fetched, [], abort.signal)).find((m) => m.id === id);
    if (abort.signal.aborted) {
      rec.error = "client_closed";
      return;
    }
    if (!entry) throw errors.modelNotFound(id);
    sendJson(res, 200, entry);
  } finally {
    res.off("close", onClose);
  }
};

/** Keeps the entries of an upstream's list that this gateway would route to that provider. */
function filterRouted(body: Buffer, registry: AppContext["providers"], provider: Provider): Buffer {
  let parsed: { data?: unknown } | null;
  try {
    parsed = JSON.parse(body.toString("utf8")) as { data?: unknown } | null;
  } catch {
    return Buffer.from(JSON.stringify({ object: "list", data: [] }));
  }
  if (!parsed || typeof parsed !== "object" || !Array.isArray(parsed.data))
    return Buffer.from(JSON.stringify({ object: "list", data: [] }));
  parsed.data = parsed.data.filter((m: unknown) => {
    const id = (m as { id?: unknown } | null)?.id;
    return typeof id === "string" && registry.route(id) === provider;
  });
  return Buffer.from(JSON.stringify(parsed));
}
