import { z } from "zod";
import type { HttpMethod, ResponseDoc, RouteDef, RouteGroup } from "./route.js";

/**
 * The OpenAPI 3.1 document of the admin API, generated from the route table:
 * the same zod schemas that validate each request describe it (via zod 4's own
 * `z.toJSONSchema`, whose draft 2020-12 output is what OpenAPI 3.1 speaks), so
 * the document cannot drift from what the routes accept.
 */

type Json = Record<string, unknown>;

/** A parameter outside the route's zod schemas (a header or a query value read by hand). */
export interface ExtraParameter {
  name: string;
  in: "query" | "header";
  description: string;
  schema: Json;
  required?: boolean;
}

/**
 * An endpoint served outside the route table (a plain Koa router), described
 * here with zod schemas of its own; a test checks the route accepts them.
 */
export interface DescribedOperation {
  method: HttpMethod;
  path: string;
  tag: string;
  summary: string;
  description?: string;
  security: Security;
  body?: z.ZodType;
  response?: ResponseDoc;
  /** Error statuses this endpoint answers with, besides the defaults of its security. */
  errors: number[];
}

/** Who may call: nobody needs a credential, any admin credential, or the session cookie itself. */
export type Security = "public" | "admin" | "session";

export interface OpenApiInput {
  groups: RouteGroup[];
  described?: DescribedOperation[];
  /** Extra parameters per "<method> <path>" of the table (paths in Koa form). */
  extraParameters?: Record<string, ExtraParameter[]>;
  version: string;
}

export const ORG_HEADER_PARAMETER: ExtraParameter = {
  name: "Tollgate-Organization",
  in: "header",
  description: "The organization the call acts on (an org_… id); without it, the default organization.",
  schema: { type: "string", pattern: "^org_[0-9a-z]{26}$" },
};

const ERROR_TEXT: Record<number, string> = {
  400: "Invalid request: the envelope's `field` names the parameter or body field at fault",
  401: "No valid admin credential, or the dashboard session is expired or unknown",
  403: "A cookie-authenticated unsafe call without the session's x-csrf-token, or a role that may not do this",
  404: "Not found: the envelope's `field` names which id was not found",
  409: "Conflict with the resource's current state (a duplicate name, a status that does not allow it)",
  413: "Request body too large",
  415: "Content-Type is not application/json",
  429: "Too many invalid credentials from this address: retry after the Retry-After header's seconds",
  503: "Not ready",
};

const UNSAFE: ReadonlySet<HttpMethod> = new Set(["post", "put", "patch", "delete"]);

/** `/internal/api-keys/:id` and `/x/:provider/*model` as OpenAPI writes them. */
export function openApiPath(koaPath: string): string {
  return koaPath.replace(/[:*]([A-Za-z_][\w]*)/g, "{$1}");
}

export function operationKey(method: string, koaPath: string): string {
  return `${method.toLowerCase()} ${koaPath}`;
}

/** Builds the document; pure, so a test and the served route produce the same bytes. */
export function openApiDocument(input: OpenApiInput): Json {
  const components: Record<string, Json> = { Error: ERROR_SCHEMA };
  const convert = converter(components);
  const paths: Record<string, Record<string, Json>> = {};
  const add = (method: HttpMethod, koaPath: string, op: Json) => {
    (paths[openApiPath(koaPath)] ??= {})[method] = op;
  };

  for (const group of input.groups) {
    for (const route of group.routes as RouteDef<unknown, unknown, unknown>[]) {
      const security: Security = route.path.startsWith("/internal/") ? "admin" : "public";
      const extra = input.extraParameters?.[operationKey(route.method, route.path)] ?? [];
      const parameters = [
        ...describeWildcards(route.path, pathParameters(route, convert)),
        ...(route.query ? objectParameters(convert(route.query, "input"), "query") : []),
        ...extra.map(({ name, in: where, description, schema, required }) => ({
          name,
          in: where,
          description,
          schema,
          required: required ?? false,
        })),
        ...(security === "admin" ? [{ ...ORG_HEADER_PARAMETER, required: false }] : []),
      ];
      const errors = new Set<number>();
      if (route.params || route.query || route.body || extra.length) errors.add(400);
      if (route.params) errors.add(404);
      if (route.body) for (const s of [413, 415]) errors.add(s);
      if (security === "admin" && UNSAFE.has(route.method)) errors.add(409);
      add(route.method, route.path, {
        operationId: operationId(route.method, route.path),
        tags: [group.name],
        ...(route.summary ? { summary: route.summary } : {}),
        ...(parameters.length ? { parameters } : {}),
        ...(route.body
          ? {
              requestBody: {
                required: route.bodyKind !== "optional",
                content: { "application/json": { schema: convert(route.body, "input") } },
              },
            }
          : {}),
        responses: responses(route.response, [...errors], security, route.method, convert),
        security: securityOf(security, route.method),
      });
    }
  }
  for (const op of input.described ?? []) {
    add(op.method, op.path, {
      operationId: operationId(op.method, op.path),
      tags: [op.tag],
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      ...(op.body
        ? { requestBody: { required: true, content: { "application/json": { schema: convert(op.body, "input") } } } }
        : {}),
      responses: responses(op.response, op.errors, op.security, op.method, convert),
      security: securityOf(op.security, op.method),
    });
  }

  return {
    openapi: "3.1.0",
    info: {
      title: "Tollgate admin API",
      version: input.version,
      description:
        "The control plane's admin API: organizations, teams, users, API keys, gateways, prices, usage and audit. " +
        "Every /internal call needs an admin credential: `Authorization: Bearer <master key or admin token>`, or the dashboard's " +
        "session cookie (unsafe methods then also send `x-csrf-token`). Errors share one envelope: `{ error: { code, message, field? } }`.",
    },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    paths: sortKeys(paths),
    components: {
      schemas: sortKeys(components),
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "The master key (PROXY_MASTER_KEY) or an admin token" },
        session: {
          type: "apiKey",
          in: "cookie",
          name: "tollgate_session",
          description: "The dashboard session opened by POST /internal/sessions",
        },
        csrf: {
          type: "apiKey",
          in: "header",
          name: "x-csrf-token",
          description: "The session's csrf_token: required with the cookie on unsafe methods",
        },
      },
    },
  };
}

const ERROR_SCHEMA: Json = {
  type: "object",
  description: "Every error of the admin API",
  properties: {
    error: {
      type: "object",
      properties: {
        code: { type: "string", description: "Stable machine code, e.g. invalid_request, not_found, conflict" },
        message: { type: "string", description: "What went wrong, for a person" },
        field: { type: "string", description: "The request field, parameter or header at fault, when one is" },
      },
      required: ["code", "message"],
    },
  },
  required: ["error"],
};

type Convert = (schema: z.ZodType, io: "input" | "output") => Json;

/**
 * zod → JSON Schema, with named schemas (`.meta({ id })`) hoisted into
 * components. Request schemas keep `additionalProperties: false` (the routes
 * refuse unknown fields); response schemas drop it, since a response may grow.
 */
function converter(components: Record<string, Json>): Convert {
  return (schema, io) => {
    const out = z.toJSONSchema(schema, { io, target: "draft-2020-12", unrepresentable: "any" }) as Json;
    delete out.$schema;
    const defs = (out.$defs ?? {}) as Record<string, Json>;
    delete out.$defs;
    const fix = (node: Json) => rewrite(node, io === "output");
    for (const [id, def] of Object.entries(defs)) components[id] = fix(def);
    return fix(out);
  };
}

function rewrite(node: Json, loose: boolean): Json {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== "object") return v;
    const out: Json = {};
    for (const [k, val] of Object.entries(v)) {
      if (k === "$ref" && typeof val === "string") out[k] = val.replace("#/$defs/", "#/components/schemas/");
      else if (loose && k === "additionalProperties" && val === false) continue;
      else out[k] = walk(val);
    }
    return out;
  };
  return walk(node) as Json;
}

function pathParameters(route: RouteDef<unknown, unknown, unknown>, convert: Convert): Json[] {
  if (!route.params) return [];
  if (typeof (route.params as { safeParse?: unknown }).safeParse === "function") {
    return objectParameters(convert(route.params as z.ZodType, "input"), "path").map((p) => ({ ...p, required: true }));
  }
  return Object.entries(route.params as Record<string, z.ZodType>).map(([name, schema]) => ({
    name,
    in: "path",
    required: true,
    schema: convert(schema, "input"),
  }));
}

/** A `*name` segment takes the rest of the path, slashes included: say so, since OpenAPI has no such parameter. */
function describeWildcards(koaPath: string, parameters: Json[]): Json[] {
  const rest = new Set([...koaPath.matchAll(/\*([A-Za-z_]\w*)/g)].map((m) => m[1]));
  return parameters.map((p) =>
    p.in === "path" && rest.has(p.name as string)
      ? { ...p, description: "The rest of the path: may hold '/', as is or encoded as %2F" }
      : p,
  );
}

function objectParameters(schema: Json, where: "path" | "query"): Json[] {
  const properties = (schema.properties ?? {}) as Record<string, Json>;
  const required = new Set((schema.required ?? []) as string[]);
  return Object.entries(properties).map(([name, s]) => {
    const { description, ...rest } = s;
    return {
      name,
      in: where,
      required: where === "path" || required.has(name),
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}

function responses(
  success: ResponseDoc | undefined,
  errors: number[],
  security: Security,
  method: HttpMethod,
  convert: Convert,
): Json {
  const status = success?.status ?? 200;
  const out: Json = {
    [String(status)]: {
      description: success?.description ?? (status === 201 ? "Created" : status === 204 ? "No content" : "OK"),
      ...(success?.schema ? { content: { "application/json": { schema: convert(success.schema, "output") } } } : {}),
    },
  };
  const all = new Set(errors);
  if (security !== "public") all.add(401);
  if (security === "admin") all.add(429);
  if (security !== "public" && UNSAFE.has(method)) all.add(403);
  for (const code of [...all].sort()) {
    out[String(code)] = {
      description: ERROR_TEXT[code] ?? "Error",
      content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
    };
  }
  return out;
}

function securityOf(security: Security, method: HttpMethod): Json[] {
  if (security === "public") return [];
  const session = UNSAFE.has(method) ? { session: [], csrf: [] } : { session: [] };
  return security === "session" ? [session] : [{ bearer: [] }, session];
}

function operationId(method: HttpMethod, koaPath: string): string {
  const words = koaPath
    .replace(/^\/internal\//, "/")
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean);
  return method + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join("");
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
