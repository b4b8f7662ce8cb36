import type { Database } from "better-sqlite3";
import type { McpServerRecord } from "../mcp/server-index.js";

/** The organization's MCP servers as synced: a credential reference, never a credential. */
export interface McpServerRepository {
  all(): McpServerRecord[];
  upsert(server: McpServerRecord, revision: number): void;
  delete(id: string): void;
  /** Removes every server (a snapshot replaces them all). */
  clear(): void;
}

interface Row {
  id: string;
  name: string;
  url: string;
  auth_type: string;
  auth_header: string | null;
  credential_ref: string | null;
}

function toRecord(r: Row): McpServerRecord {
  const auth: McpServerRecord["auth"] =
    r.auth_type === "bearer" && r.credential_ref
      ? { type: "bearer", credentialRef: r.credential_ref }
      : r.auth_type === "header" && r.credential_ref && r.auth_header
        ? { type: "header", headerName: r.auth_header, credentialRef: r.credential_ref }
        : { type: "none" };
  return { id: r.id, name: r.name, url: r.url, auth };
}

export function createMcpServerRepository(db: Database): McpServerRepository {
  const selectAll = db.prepare<[], Row>(
    `SELECT id, name, url, auth_type, auth_header, credential_ref FROM mcp_servers ORDER BY name`,
  );
  // A rename may take a name another server just gave up in the same batch: the id decides.
  const dropName = db.prepare(`DELETE FROM mcp_servers WHERE name = ? AND id <> ?`);
  const upsert = db.prepare(
    `INSERT INTO mcp_servers (id, name, url, auth_type, auth_header, credential_ref, updated_revision)
     VALUES (@id, @name, @url, @auth_type, @auth_header, @credential_ref, @updated_revision)
     ON CONFLICT(id) DO UPDATE SET name = excluded.name, url = excluded.url, auth_type = excluded.auth_type,
       auth_header = excluded.auth_header, credential_ref = excluded.credential_ref, updated_revision = excluded.updated_revision`,
  );
  const remove = db.prepare(`DELETE FROM mcp_servers WHERE id = ?`);
  const clear = db.prepare(`DELETE FROM mcp_servers`);
  return {
    all: () => selectAll.all().map(toRecord),
    upsert: (s, revision) => {
      dropName.run(s.name, s.id);
      upsert.run({
        id: s.id,
        name: s.name,
        url: s.url,
        auth_type: s.auth.type,
        auth_header: s.auth.type === "header" ? s.auth.headerName : null,
        credential_ref: s.auth.type === "none" ? null : s.auth.credentialRef,
        updated_revision: revision,
      });
    },
    delete: (id) => {
      remove.run(id);
    },
    clear: () => {
      clear.run();
    },
  };
}

/** The gateway migration that adds the table (listed in migrations.ts). */
export const MCP_SERVERS_MIGRATION = {
  name: "2026-12-03T08:00:00_mcp-servers",
  up(db: Database): void {
    db.exec(`
      CREATE TABLE mcp_servers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        url TEXT NOT NULL,
        auth_type TEXT NOT NULL,
        auth_header TEXT NULL,
        credential_ref TEXT NULL,
        updated_revision INTEGER NOT NULL
      );
      ALTER TABLE request_log ADD COLUMN mcp_server TEXT NULL;
      ALTER TABLE request_log ADD COLUMN mcp_tool TEXT NULL;
      ALTER TABLE request_log ADD COLUMN mcp_outcome TEXT NULL;
    `);
    // Servers created before this release were skipped as unknown changes: a full snapshot brings them.
    db.exec(
      `INSERT OR IGNORE INTO meta (key, value) SELECT 'resync_required', '1' WHERE EXISTS (SELECT 1 FROM meta WHERE key = 'revision')`,
    );
  },
};
