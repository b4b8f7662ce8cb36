import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../../test/test-control-plane.js";
import { TEST_MASTER_KEY } from "../../test/test-config.js";
import { API_TYPES_PATH, renderApiTypes } from "../../scripts/generate-api-types.mjs";
import { createHttpApp } from "../admin-app.js";
import { openApiPath, operationKey } from "../http/openapi.js";
import { adminRouteGroups } from "./index.js";
import { adminApiDocument, extraParameters } from "./openapi.js";

type Json = Record<string, any>;
let test: TestControlPlane;
let doc: Json;

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(test.base + path, {
    method,
    headers: {
      authorization: `Bearer ${TEST_MASTER_KEY}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // HTML or metrics text: kept as is.
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

beforeAll(async () => {
  test = await startTestControlPlane();
  doc = (await call("GET", "/internal/openapi.json")).body;
});

afterAll(async () => {
  await test?.stop();
});

/** Every (method, path) the running app routes, from its Koa routers: the route table and plain routers alike. */
function servedRoutes(): Set<string> {
  const koa = createHttpApp(test.cp.context!);
  const out = new Set<string>();
  for (const mw of koa.middleware as unknown as Array<{
    router?: { stack: Array<{ path: string; methods: string[] }> };
  }>) {
    for (const layer of mw.router?.stack ?? []) {
      for (const method of layer.methods) if (method !== "HEAD") out.add(operationKey(method, layer.path));
    }
  }
  return out;
}

/** A value the schema accepts as far as its type, enum, pattern and bounds say (refinements are not in the document). */
function example(schema: Json, name = ""): unknown {
  if (schema.$ref) return example(doc.components.schemas[schema.$ref.split("/").pop()], name);
  if (schema.default !== undefined) return schema.default;
  if (schema.enum) return schema.enum[0];
  if (schema.const !== undefined) return schema.const;
  if (schema.anyOf) return example(schema.anyOf.find((s: Json) => s.type !== "null") ?? schema.anyOf[0], name);
  const type = Array.isArray(schema.type) ? schema.type.find((t: string) => t !== "null") : schema.type;
  switch (type) {
    case "object": {
      const out: Json = {};
      for (const [k, s] of Object.entries((schema.properties ?? {}) as Record<string, Json>)) out[k] = example(s, k);
      return out;
    }
    case "array":
      return schema.items ? [example(schema.items, name)] : [];
    case "integer":
    case "number":
      return Math.max(schema.minimum ?? 1, schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : 1);
    case "boolean":
      return true;
    case "string":
      return exampleString(schema, name);
    default:
      return "example";
  }
}

function exampleString(schema: Json, name: string): string {
  const id = /^\^(\w+)_\[0-9a-z\]\{26\}\$$/.exec(schema.pattern ?? "");
  if (id) return `${id[1]}_${"0".repeat(26)}`;
  if (schema.format === "date-time") return new Date(Date.now() + 86_400_000).toISOString();
  if (schema.format === "uri") return "https://mcp.example.com/mcp";
  const candidates = [`example-${name}`, "openai", "gpt-4o", "a", "10ms", "10.0.0.0/8", "2026-01-01"];
  const fits = (c: string) =>
    (!schema.pattern || new RegExp(schema.pattern).test(c)) &&
    c.length >= (schema.minLength ?? 0) &&
    c.length <= (schema.maxLength ?? Infinity);
  return candidates.find(fits) ?? "example";
}

/** Deletes the innermost object property on `path` ("keys.0.ip_allowlist.0" → keys[0].ip_allowlist); false when none. */
function deleteAt(root: Json, path: string[]): boolean {
  let node: any = root;
  let target: { parent: Json; key: string } | undefined;
  for (const seg of path) {
    if (node === null || typeof node !== "object" || !(seg in node)) break;
    if (!Array.isArray(node)) target = { parent: node, key: seg };
    node = node[seg];
  }
  if (!target) return false;
  delete target.parent[target.key];
  return true;
}

/**
 * Sends every field the document describes (body or query) and checks the route
 * knows each one. A 400 about a field's value proves the route knows that field
 * (zod reports values of known keys only), so that field is dropped and the call
 * retried; a 400 "unknown field" is the failure this looks for.
 */
async function refusedFields(
  method: string,
  path: string,
  op: Json,
  describedBody = op.requestBody?.content["application/json"].schema,
): Promise<string[]> {
  const url = path.replace(/\{(\w+)\}/g, (_, n) =>
    encodeURIComponent(String(example(op.parameters.find((p: Json) => p.name === n).schema, n))),
  );
  const body = describedBody ? (example(describedBody) as Json) : undefined;
  const query: Json = {};
  for (const p of op.parameters ?? []) if (p.in === "query") query[p.name] = example(p.schema, p.name);
  const headers: Record<string, string> = {};
  for (const p of op.parameters ?? [])
    if (p.in === "header" && p.name !== "Tollgate-Organization") headers[p.name] = String(example(p.schema, p.name));
  const refused: string[] = [];
  for (let attempt = 0; attempt < 40; attempt++) {
    const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString();
    const res = await call(method.toUpperCase(), url + (qs ? `?${qs}` : ""), body, headers);
    expect(res.status, `${method} ${path} is routed`).not.toBe(405);
    if (res.status === 404) expect(res.body.error.message, `${method} ${path} is routed`).not.toMatch(/^no route/);
    if (res.status !== 400) return refused;
    const { message, field } = res.body.error as { message: string; field?: string };
    if (message.startsWith("unknown field")) {
      refused.push(field!);
      if (!deleteAt(body ?? query, field!.split("."))) delete query[field!];
      continue;
    }
    expect(field, `${method} ${path}: a 400 without a field (${message})`).toBeDefined();
    const segments = field!.split(".");
    if (headers[field!] !== undefined) delete headers[field!];
    else if (segments.length === 1 && field! in query) delete query[field!];
    else
      expect(
        body && deleteAt(body, segments),
        `${method} ${path}: the example for ${field} is refused (${message}) and cannot be dropped`,
      ).toBe(true);
  }
  throw new Error(`${method} ${path}: no answer but 400 after 40 tries`);
}

describe("OpenAPI document", () => {
  it("is served as OpenAPI 3.1 behind admin auth, and equals the document built from the table", async () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(doc).toEqual(adminApiDocument(adminRouteGroups));
    const anonymous = await fetch(`${test.base}/internal/openapi.json`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as Json).error.code).toBe("unauthorized");
  });

  it("renders a reference page with every operation, without scripts or external resources", async () => {
    const page = await call("GET", "/internal/docs");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    for (const [path, ops] of Object.entries(doc.paths as Json)) {
      for (const method of Object.keys(ops))
        expect(page.body).toContain(`${method.toUpperCase()}</span> <code>${path.replace(/&/g, "&#38;")}</code>`);
    }
    expect(page.body).not.toMatch(/<script|<link|https?:\/\/(?!json-schema)/);
  });

  it("describes every route the app serves under /internal and every route of the table, and nothing else", () => {
    const served = servedRoutes();
    const table = adminRouteGroups.flatMap((g) => g.routes.map((r) => operationKey(r.method, r.path)));
    const expected = new Set([...table, ...[...served].filter((k) => k.split(" ")[1]!.startsWith("/internal"))]);
    const documented = new Set(
      Object.entries(doc.paths as Json).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`)),
    );
    const missing = [...expected].filter((k) => {
      const [method, path] = k.split(" ") as [string, string];
      return !documented.has(`${method} ${openApiPath(path)}`);
    });
    expect(missing, "routes the document lacks").toEqual([]);
    const served2 = new Set([...expected].map((k) => `${k.split(" ")[0]} ${openApiPath(k.split(" ")[1]!)}`));
    expect(
      [...documented].filter((k) => !served2.has(k)),
      "documented operations no route serves",
    ).toEqual([]);
    for (const key of Object.keys(extraParameters)) expect(table, `extra parameters for ${key}`).toContain(key);
  });

  it("describes no body field or query parameter a route refuses", async () => {
    const refusals: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths as Json)) {
      for (const [method, op] of Object.entries(ops as Json)) {
        const hasQuery = (op.parameters ?? []).some((p: Json) => p.in === "query");
        if (!op.requestBody && !hasQuery) continue;
        for (const field of await refusedFields(method, path, op)) refusals.push(`${method} ${path}: ${field}`);
      }
    }
    expect(refusals).toEqual([]);
  });

  it("would catch a described field the route refuses", async () => {
    const op = doc.paths["/internal/teams"].post;
    const schema = op.requestBody.content["application/json"].schema;
    const drifted = { ...schema, properties: { ...schema.properties, budget_owner: { type: "string" } } };
    expect(await refusedFields("post", "/internal/teams", op, drifted)).toEqual(["budget_owner"]);
  });

  it("types the dashboard's API client: api-types.ts is what openapi-typescript makes of this document", async () => {
    const committed = readFileSync(API_TYPES_PATH, "utf8");
    expect(
      committed === (await renderApiTypes(doc)),
      "control-plane/dashboard/src/api-types.ts is stale: run pnpm generate:api-types",
    ).toBe(true);
  });
});
