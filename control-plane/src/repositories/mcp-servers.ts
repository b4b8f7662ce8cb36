import { newId } from "@tollgate/shared";
import type { Selectable } from "kysely";
import type { Db } from "../db/database.js";
import type { McpServersTable } from "../db/schema.js";
import { toIso } from "./rows.js";

/**
 * How a gateway authenticates to the server. `credential_ref` names a secret
 * (env:MCP_SECRET_…) that each gateway resolves from its own environment: the
 * control plane never holds the credential, so no API answer, log, audit row
 * or change-log entry can carry it.
 */
export type McpServerAuth =
  | { type: "none" }
  | { type: "bearer"; credential_ref: string }
  | { type: "header"; header_name: string; credential_ref: string };

export interface McpServer {
  id: string;
  name: string;
  url: string;
  description: string;
  auth: McpServerAuth;
  created_at: string;
  updated_at: string;
}

/** The synced state of one MCP server, as written to the change log and sent in snapshots. */
export interface McpServerSyncRecord {
  id: string;
  name: string;
  url: string;
  auth: McpServerAuth;
}

export interface McpServerInput {
  name: string;
  url: string;
  description?: string | undefined;
  auth?: McpServerAuth | undefined;
}

function authOf(r: Selectable<McpServersTable>): McpServerAuth {
  if (r.auth_type === "bearer" && r.credential_ref) return { type: "bearer", credential_ref: r.credential_ref };
  if (r.auth_type === "header" && r.credential_ref && r.auth_header) {
    return { type: "header", header_name: r.auth_header, credential_ref: r.credential_ref };
  }
  return { type: "none" };
}

function toServer(r: Selectable<McpServersTable>): McpServer {
  return {
    id: r.id,
    name: r.name,
    url: r.url,
    description: r.description,
    auth: authOf(r),
    created_at: toIso(r.created_at)!,
    updated_at: toIso(r.updated_at)!,
  };
}

export function toSyncRecord(s: McpServer): McpServerSyncRecord {
  return { id: s.id, name: s.name, url: s.url, auth: s.auth };
}

function authColumns(auth: McpServerAuth | undefined) {
  const a = auth ?? { type: "none" as const };
  return {
    auth_type: a.type,
    auth_header: a.type === "header" ? a.header_name : null,
    credential_ref: a.type === "none" ? null : a.credential_ref,
  };
}

export async function insertMcpServer(trx: Db, orgId: string, input: McpServerInput): Promise<McpServer> {
  const now = new Date();
  const row = await trx
    .insertInto("mcp_servers")
    .values({
      id: newId("mcp"),
      org_id: orgId,
      name: input.name,
      url: input.url,
      description: input.description ?? "",
      ...authColumns(input.auth),
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toServer(row);
}

export async function updateMcpServer(
  trx: Db,
  orgId: string,
  id: string,
  patch: Partial<McpServerInput>,
): Promise<McpServer | null> {
  const row = await trx
    .updateTable("mcp_servers")
    .set({
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      ...(patch.url !== undefined ? { url: patch.url } : {}),
      ...(patch.description !== undefined ? { description: patch.description } : {}),
      ...(patch.auth !== undefined ? authColumns(patch.auth) : {}),
      updated_at: new Date(),
    })
    .where("org_id", "=", orgId)
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirst();
  return row ? toServer(row) : null;
}

export async function deleteMcpServer(trx: Db, orgId: string, id: string): Promise<McpServer | null> {
  const row = await trx
    .deleteFrom("mcp_servers")
    .where("org_id", "=", orgId)
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirst();
  return row ? toServer(row) : null;
}

export async function getMcpServer(db: Db, orgId: string, id: string): Promise<McpServer | null> {
  const row = await db
    .selectFrom("mcp_servers")
    .selectAll()
    .where("org_id", "=", orgId)
    .where("id", "=", id)
    .executeTakeFirst();
  return row ? toServer(row) : null;
}

export async function findMcpServerByName(db: Db, orgId: string, name: string): Promise<McpServer | null> {
  const row = await db
    .selectFrom("mcp_servers")
    .selectAll()
    .where("org_id", "=", orgId)
    .where("name", "=", name)
    .executeTakeFirst();
  return row ? toServer(row) : null;
}

/** Every server of the organization, by name (an organization has few). */
export async function listMcpServers(db: Db, orgId: string): Promise<McpServer[]> {
  const rows = await db.selectFrom("mcp_servers").selectAll().where("org_id", "=", orgId).orderBy("name").execute();
  return rows.map(toServer);
}

/** The servers as synced, for a snapshot. */
export async function allMcpServerSyncRecords(db: Db, orgId: string): Promise<McpServerSyncRecord[]> {
  return (await listMcpServers(db, orgId)).map(toSyncRecord);
}
