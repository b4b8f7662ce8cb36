import { AppError } from "@tollgate/shared";
import { z } from "zod";
import { audit, auditWrite } from "../http/audit.js";
import { getByIdRoute } from "./get-by-id.js";
import { defineRoute, routeGroup } from "../http/route.js";
import { listServerTools } from "../mcp/list-tools.js";
import {
  deleteMcpServer,
  findMcpServerByName,
  getMcpServer,
  insertMcpServer,
  listMcpServers,
  toSyncRecord,
  updateMcpServer,
} from "../repositories/mcp-servers.js";
import { writeWithChanges } from "../changes/write-with-changes.js";
import { deletedSchema, pageOf } from "./response-schemas.js";
import { idOf } from "../http/schemas.js";

/** No underscore: the aggregated /mcp names tools `{server}__{tool}` and splits at the first `__`. */
const serverName = z
  .string({ error: "must be a string" })
  .regex(
    /^[a-z0-9][a-z0-9-]{0,62}$/,
    "must be 1-63 lower-case letters, digits or hyphens, starting with a letter or digit",
  );

const serverUrl = z
  .url({ protocol: /^https?$/, error: "must be an absolute http(s) URL (the server's Streamable HTTP endpoint)" })
  .max(2048, "must be at most 2048 characters")
  .superRefine((v, ctx) => {
    const url = new URL(v);
    // A credential in the URL would be stored and synced in plain text: it belongs in auth.credential_ref.
    if (url.username !== "" || url.password !== "")
      ctx.addIssue({ code: "custom", message: "must not carry a user or password: use auth.credential_ref" });
    if (url.hash !== "") ctx.addIssue({ code: "custom", message: "must not have a #fragment" });
  });

const credentialRef = z
  .string({ error: "must be a string" })
  .regex(
    /^env:MCP_SECRET_[A-Z0-9_]{1,100}$/,
    "must be env:MCP_SECRET_<NAME>: a variable each gateway reads from its environment (the credential itself is never sent to the control plane)",
  );

/** Headers the transport itself owns. */
const RESERVED_HEADERS = new Set([
  "host",
  "content-type",
  "content-length",
  "accept",
  "connection",
  "transfer-encoding",
  "mcp-session-id",
  "mcp-protocol-version",
  "last-event-id",
]);
const headerName = z
  .string({ error: "must be a string" })
  .regex(/^[A-Za-z0-9-]{1,100}$/, "must be an HTTP header name")
  .refine((h) => !RESERVED_HEADERS.has(h.toLowerCase()), "is set by the MCP transport itself");

const auth = z.discriminatedUnion(
  "type",
  [
    z.strictObject({ type: z.literal("none") }),
    z.strictObject({ type: z.literal("bearer"), credential_ref: credentialRef }),
    z.strictObject({ type: z.literal("header"), header_name: headerName, credential_ref: credentialRef }),
  ],
  {
    error:
      'must be {"type":"none"}, {"type":"bearer","credential_ref":"env:MCP_SECRET_…"} or {"type":"header","header_name":…,"credential_ref":…}',
  },
);

const description = z.string({ error: "must be a string" }).max(1000, "must be at most 1000 characters");

const createServer = z.strictObject({
  name: serverName,
  url: serverUrl,
  description: description.optional(),
  auth: auth.optional(),
});
const patchServer = z
  .strictObject({
    name: serverName.optional(),
    url: serverUrl.optional(),
    description: description.optional(),
    auth: auth.optional(),
  })
  .refine((v) => Object.keys(v).length > 0, "send at least one field to change");

const iso = z.string().meta({ format: "date-time" });
/** What the API answers for a server: the credential's reference, never a credential. */
const mcpServerSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    url: z.string(),
    description: z.string(),
    auth: z.union([
      z.object({ type: z.literal("none") }),
      z.object({ type: z.literal("bearer"), credential_ref: z.string() }),
      z.object({ type: z.literal("header"), header_name: z.string(), credential_ref: z.string() }),
    ]),
    created_at: iso,
    updated_at: iso,
  })
  .meta({ id: "McpServer" });
const toolListSchema = z.object({ data: z.array(z.object({ name: z.string(), description: z.string() })) });

const conflict = (name: string) =>
  new AppError("conflict", `an MCP server named ${JSON.stringify(name)} already exists`, { field: "name" });
const notFound = (id: string) => new AppError("not_found", `MCP server ${id} not found`, { field: "id" });

/**
 * `/internal/mcp-servers`: the organization's MCP servers, synced to its
 * gateways on the same revision log as keys. Answers name the credential's
 * reference, which is not a secret; the credential never passes here.
 */
export const mcpServerRoutes = routeGroup("mcp-servers", [
  defineRoute({
    method: "post",
    path: "/internal/mcp-servers",
    summary: "Register an MCP server (synced to every gateway of the organization)",
    body: createServer,
    response: { status: 201, schema: mcpServerSchema },
    async handler({ ctx, body }, app) {
      const input = await body();
      const orgId: string = ctx.state.orgId;
      const { result } = await writeWithChanges(app, orgId, async (scope) => {
        const { trx, emit } = scope;
        if (await findMcpServerByName(trx, orgId, input.name)) throw conflict(input.name);
        const server = await insertMcpServer(trx, orgId, input);
        emit({ kind: "mcp_server_upsert", resourceId: server.id, payload: toSyncRecord(server) });
        await auditWrite(scope, ctx, "mcp_server", "create", server);
        return server;
      });
      ctx.status = 201;
      ctx.body = result;
    },
  }),
  defineRoute({
    method: "get",
    path: "/internal/mcp-servers",
    summary: "List the organization's MCP servers",
    response: { schema: pageOf(mcpServerSchema) },
    async handler({ ctx }, app) {
      ctx.body = { data: await listMcpServers(app.db, ctx.state.orgId), next_cursor: null };
    },
  }),
  getByIdRoute({
    path: "/internal/mcp-servers/:id",
    summary: "Get an MCP server",
    id: idOf("mcp"),
    noun: "MCP server",
    find: getMcpServer,
    response: mcpServerSchema,
  }),
  // For the dashboard's per-server tool picker: asked of the server itself, never cached.
  defineRoute({
    method: "get",
    path: "/internal/mcp-servers/:id/tools",
    summary:
      "List an MCP server's tools, asked of the server (409 when the control plane lacks its credential, 502 when it cannot be reached)",
    params: { id: idOf("mcp") },
    response: { schema: toolListSchema },
    async handler({ ctx, params }, app) {
      const id = params().id;
      const server = await getMcpServer(app.db, ctx.state.orgId, id);
      if (!server) throw notFound(id);
      const outcome = await listServerTools(server, (v) => app.config.mcpSecrets.get(v));
      if (!outcome.ok) {
        ctx.status = outcome.code === "mcp_credential_missing" ? 409 : 502;
        ctx.body = { error: { code: outcome.code, message: outcome.message } };
        return;
      }
      ctx.body = { data: outcome.tools };
    },
  }),
  defineRoute({
    method: "patch",
    path: "/internal/mcp-servers/:id",
    summary: "Change an MCP server",
    params: { id: idOf("mcp") },
    body: patchServer,
    response: { schema: mcpServerSchema },
    async handler({ ctx, params, body }, app) {
      const id = params().id;
      const input = await body();
      const orgId: string = ctx.state.orgId;
      const { result } = await writeWithChanges(app, orgId, async (scope) => {
        const { trx, emit } = scope;
        const before = await getMcpServer(trx, orgId, id);
        if (!before) throw notFound(id);
        if (
          input.name !== undefined &&
          input.name !== before.name &&
          (await findMcpServerByName(trx, orgId, input.name))
        )
          throw conflict(input.name);
        const after = (await updateMcpServer(trx, orgId, id, input))!;
        emit({ kind: "mcp_server_upsert", resourceId: id, payload: toSyncRecord(after) });
        await audit(scope, ctx, { action: "mcp_server.update", targetType: "mcp_server", targetId: id, before, after });
        return after;
      });
      ctx.body = result;
    },
  }),
  defineRoute({
    method: "delete",
    path: "/internal/mcp-servers/:id",
    summary: "Delete an MCP server",
    params: { id: idOf("mcp") },
    response: { schema: deletedSchema },
    async handler({ ctx, params }, app) {
      const id = params().id;
      const orgId: string = ctx.state.orgId;
      await writeWithChanges(app, orgId, async (scope) => {
        const { trx, emit } = scope;
        const server = await deleteMcpServer(trx, orgId, id);
        if (!server) throw notFound(id);
        emit({ kind: "mcp_server_delete", resourceId: id, payload: { id } });
        await audit(scope, ctx, {
          action: "mcp_server.delete",
          targetType: "mcp_server",
          targetId: id,
          before: server,
        });
      });
      ctx.body = { id, deleted: true };
    },
  }),
]);
