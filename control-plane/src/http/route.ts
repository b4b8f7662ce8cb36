import Router from "@koa/router";
import type { Context } from "koa";
import type { z } from "zod";
import type { AppContext } from "../context.js";
import { queryObject, readJsonObject, validate } from "./body.js";

export type HttpMethod = "get" | "post" | "patch" | "put" | "delete";

/** What a handler reads of its request; each part is validated when first asked for. */
export interface RouteRequest<P, Q, B> {
  ctx: Context;
  /** The organization the call acts on (resolved before routing). */
  orgId: string;
  params(): P;
  query(): Q;
  body(): Promise<B>;
}

/**
 * One admin endpoint: its method, path and zod schemas, kept beside the handler
 * so the table can be walked (an OpenAPI document, a route listing). The handler
 * asks for each part in the order it needs, which keeps the order of validation
 * errors (which field a 400 names first) as each endpoint defines it.
 */
export interface RouteDef<P = unknown, Q = unknown, B = unknown> {
  method: HttpMethod;
  path: string;
  summary?: string;
  /**
   * Path parameters: one schema per parameter (a 400 then reads "must be an ak_… id"),
   * or one object schema over them all (a 400 names the parameter).
   */
  params?: { [K in keyof P]: z.ZodType<P[K]> } | z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** "bulk" allows MAX_BULK_BODY_BYTES; "optional" also takes an empty body as `{}`. */
  bodyKind?: "json" | "bulk" | "optional";
  /** What success answers, for the OpenAPI document only: never validated at run time. */
  response?: ResponseDoc;
  handler(req: RouteRequest<P, Q, B>, app: AppContext): Promise<void> | void;
}

/** A success response as documented: status (default 200) and, when it has one, the body's schema. */
export interface ResponseDoc {
  status?: number;
  description?: string;
  schema?: z.ZodType;
}

/** A group of endpoints served by one router (so its 405s list only its own methods). */
export interface RouteGroup {
  name: string;
  routes: RouteDef<any, any, any>[];
}

export function defineRoute<P = undefined, Q = undefined, B = undefined>(def: RouteDef<P, Q, B>): RouteDef<P, Q, B> {
  return def;
}

export function routeGroup(name: string, routes: RouteDef<any, any, any>[]): RouteGroup {
  return { name, routes };
}

/** Mounts one group on a Koa router, in table order. */
export function buildRouter(app: AppContext, group: RouteGroup): Router {
  const router = new Router();
  for (const route of group.routes) {
    router[route.method](route.path, async (ctx) => {
      await route.handler(requestOf(app, route, ctx), app);
    });
  }
  return router;
}

function requestOf<P, Q, B>(app: AppContext, route: RouteDef<P, Q, B>, ctx: Context): RouteRequest<P, Q, B> {
  return {
    ctx,
    orgId: ctx.state.orgId as string,
    params: () => {
      if (isSchema(route.params)) return validate(route.params, ctx.params);
      const out: Record<string, unknown> = {};
      for (const [name, schema] of Object.entries(route.params ?? {}))
        out[name] = validate(schema as z.ZodType, ctx.params[name]);
      return out as P;
    },
    query: () => (route.query ? validate(route.query, queryObject(ctx)) : (undefined as Q)),
    body: async () => {
      const raw = await readBody(app, ctx, route.bodyKind ?? "json");
      return route.body ? validate(route.body, raw) : (raw as B);
    },
  };
}

async function readBody(
  app: AppContext,
  ctx: Context,
  kind: "json" | "bulk" | "optional",
): Promise<Record<string, unknown>> {
  // Action endpoints accept an empty body.
  if (
    kind === "optional" &&
    (ctx.get("content-length") === "0" || (!ctx.get("content-length") && !ctx.get("transfer-encoding")))
  ) {
    return {};
  }
  return readJsonObject(ctx, kind === "bulk" ? app.config.maxBulkBodyBytes : app.config.maxBodyBytes);
}

function isSchema(value: unknown): value is z.ZodType {
  return typeof (value as { safeParse?: unknown } | undefined)?.safeParse === "function";
}
