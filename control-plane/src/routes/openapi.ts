import { readFileSync } from "node:fs";
import { z } from "zod";
import { openApiDocument, type DescribedOperation, type ExtraParameter } from "../http/openapi.js";
import { defineRoute, routeGroup, type RouteGroup } from "../http/route.js";

/**
 * GET /internal/openapi.json and its rendered reference, GET /internal/docs.
 * Both sit behind admin auth like every /internal path: the document holds no
 * secret, but one rule for the whole admin port is simpler to reason about
 * than an exception, and the people who read it hold a credential anyway
 * (the dashboard's session cookie opens the page in a browser).
 */

const sessionSchema = z
  .object({
    session: z.object({
      id: z.string(),
      created_at: z.string(),
      expires_at: z.string(),
      idle_expires_at: z.string(),
      actor: z.object({
        kind: z.enum(["master", "admin_token", "user"]),
        id: z.string().nullable(),
        role: z.enum(["admin", "read_only", "member"]),
        org_id: z.string().nullable(),
        email: z.string().optional(),
      }),
    }),
    csrf_token: z
      .string()
      .meta({ description: "Send it as x-csrf-token on every unsafe call authenticated by the cookie" }),
  })
  .meta({ id: "Session" });

/** The dashboard session routes (a plain Koa router in sessions.ts), described by hand; a test checks they agree. */
export const sessionOperations: DescribedOperation[] = [
  {
    method: "post",
    path: "/internal/sessions",
    tag: "sessions",
    summary: "Sign in: exchange an admin credential for an HttpOnly session cookie and a CSRF token",
    security: "public",
    body: z.strictObject({
      credential: z.string().min(1).max(4096).meta({ description: "The master key or an admin token" }),
    }),
    response: { status: 201, schema: sessionSchema, description: "Signed in; Set-Cookie carries the session" },
    errors: [400, 401, 413, 415, 429],
  },
  {
    method: "get",
    path: "/internal/sessions/current",
    tag: "sessions",
    summary: "The session of this cookie, with its CSRF token",
    security: "session",
    response: { schema: sessionSchema },
    errors: [],
  },
  {
    method: "delete",
    path: "/internal/sessions/current",
    tag: "sessions",
    summary: "Sign out: ends the session and clears the cookie",
    security: "session",
    response: { status: 204 },
    errors: [],
  },
];

const waitForGateways: ExtraParameter = {
  name: "wait_for_gateways",
  in: "query",
  description:
    "Wait up to this long (e.g. 500ms, 5s; at most 60s) for the online gateways to apply the change; the answer then carries `sync`",
  schema: { type: "string", pattern: "^\\d+(ms|s)$" },
};

/** Parameters the key routes read by hand, outside their zod schemas. */
export const extraParameters: Record<string, ExtraParameter[]> = {
  "post /internal/api-keys": [waitForGateways],
  "post /internal/api-keys/bulk": [waitForGateways],
  "patch /internal/api-keys/:id": [waitForGateways],
  "post /internal/api-keys/:id/deactivate": [waitForGateways],
  "post /internal/api-keys/:id/activate": [waitForGateways],
  "post /internal/api-keys/:id/revoke": [waitForGateways],
  "delete /internal/api-keys/:id": [waitForGateways],
  "post /internal/api-keys/:id/rotate": [
    waitForGateways,
    {
      name: "Idempotency-Key",
      in: "header",
      description: "8 to 200 characters (a UUID is ideal): a retry with the same key returns the same new secret",
      schema: { type: "string", minLength: 8, maxLength: 200 },
    },
  ],
};

const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** The whole admin API's document: the table's routes, the session routes and the hand-read parameters. */
export function adminApiDocument(groups: RouteGroup[]): Record<string, unknown> {
  return openApiDocument({ groups, described: sessionOperations, extraParameters, version: VERSION });
}

/** `groups` is read on first use, so this group can sit in the very table it documents. */
export function openApiRoutes(groups: () => RouteGroup[]): RouteGroup {
  let json: string | undefined;
  let html: string | undefined;
  const document = () => (json ??= JSON.stringify(adminApiDocument(groups()), null, 2));
  return routeGroup("openapi", [
    defineRoute({
      method: "get",
      path: "/internal/openapi.json",
      summary: "This document: the OpenAPI 3.1 description of the admin API",
      response: { description: "An OpenAPI 3.1 document" },
      handler({ ctx }) {
        ctx.type = "application/json";
        ctx.body = document();
      },
    }),
    defineRoute({
      method: "get",
      path: "/internal/docs",
      summary: "The admin API reference as an HTML page (rendered on the server: no script, no CDN)",
      response: { description: "An HTML page" },
      handler({ ctx }) {
        ctx.set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
        ctx.set("X-Content-Type-Options", "nosniff");
        ctx.type = "text/html; charset=utf-8";
        ctx.body = html ??= renderReference(JSON.parse(document()) as Doc);
      },
    }),
  ]);
}

type Doc = {
  info: { title: string; version: string; description: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
};
type Operation = {
  summary?: string;
  description?: string;
  tags: string[];
  parameters?: Array<{ name: string; in: string; required: boolean; description?: string; schema: unknown }>;
  requestBody?: { required: boolean; content: { "application/json": { schema: unknown } } };
  responses: Record<string, { description: string; content?: { "application/json": { schema: unknown } } }>;
  security: Array<Record<string, string[]>>;
};

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const code = (v: unknown) => `<pre>${esc(JSON.stringify(v, null, 2))}</pre>`;

/** A plain page: operations grouped by tag, each with its parameters, body, responses and schemas. */
export function renderReference(doc: Doc): string {
  const byTag = new Map<string, string[]>();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const id = `${method}-${path}`.replace(/[^\w-]+/g, "-");
      const params = op.parameters?.length
        ? `<table><tr><th>name</th><th>in</th><th>required</th><th>schema</th><th>description</th></tr>${op.parameters
            .map(
              (p) =>
                `<tr><td><code>${esc(p.name)}</code></td><td>${p.in}</td><td>${p.required ? "yes" : ""}</td><td><code>${esc(JSON.stringify(p.schema))}</code></td><td>${esc(p.description ?? "")}</td></tr>`,
            )
            .join("")}</table>`
        : "";
      const body = op.requestBody
        ? `<h4>Request body${op.requestBody.required ? "" : " (optional)"}</h4>${code(op.requestBody.content["application/json"].schema)}`
        : "";
      const responses = Object.entries(op.responses)
        .map(
          ([status, r]) =>
            `<li><b>${status}</b> ${esc(r.description)}${r.content && !status.startsWith("4") && !status.startsWith("5") ? code(r.content["application/json"].schema) : ""}</li>`,
        )
        .join("");
      const auth = op.security.length ? op.security.map((s) => Object.keys(s).join(" + ")).join(" or ") : "none";
      const section = `<section id="${id}"><h3><span class="m ${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code></h3>${op.summary ? `<p>${esc(op.summary)}</p>` : ""}<p class="auth">auth: ${esc(auth)}</p>${params}${body}<h4>Responses</h4><ul>${responses}</ul></section>`;
      const tag = op.tags[0] ?? "other";
      byTag.set(tag, [...(byTag.get(tag) ?? []), section]);
    }
  }
  const toc = [...byTag.keys()].map((t) => `<a href="#tag-${esc(t)}">${esc(t)}</a>`).join(" · ");
  const schemas = Object.entries(doc.components.schemas)
    .map(([name, s]) => `<section id="schema-${esc(name)}"><h3>${esc(name)}</h3>${code(s)}</section>`)
    .join("");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(doc.info.title)}</title><style>
body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
pre{background:#f4f5f7;padding:.6rem;overflow:auto;font-size:12px;max-height:24rem}
table{border-collapse:collapse;font-size:13px;width:100%}td,th{border:1px solid #ddd;padding:.25rem .4rem;text-align:left;vertical-align:top}
section{border-top:1px solid #e3e3e3;padding:.4rem 0}.m{display:inline-block;min-width:4.2rem;text-align:center;border-radius:4px;color:#fff;font-size:12px;padding:1px 4px}
.get{background:#1f6feb}.post{background:#1a7f37}.patch,.put{background:#9a6700}.delete{background:#cf222e}.auth{color:#555;font-size:13px}
</style></head><body><h1>${esc(doc.info.title)} <small>${esc(doc.info.version)}</small></h1><p>${esc(doc.info.description)}</p>
<p>Machine-readable: <a href="/internal/openapi.json">/internal/openapi.json</a> (OpenAPI 3.1)</p><nav>${toc} · <a href="#schemas">schemas</a></nav>
${[...byTag].map(([tag, sections]) => `<h2 id="tag-${esc(tag)}">${esc(tag)}</h2>${sections.join("")}`).join("")}<h2 id="schemas">Schemas</h2>${schemas}</body></html>`;
}
