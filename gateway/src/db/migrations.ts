import type { Database } from "better-sqlite3";
import { MCP_SERVERS_MIGRATION } from "./mcp-server-repository.js";

/** One schema step. Frozen once released: change the schema with a new entry. */
export interface Migration {
  name: string;
  up(db: Database): void;
}

/** Every migration, in order. Listed explicitly so a bundle carries them all. */
export const migrations: readonly Migration[] = [
  {
    name: "2025-01-01T00:00:00_initial",
    up(db) {
      db.exec(`
        CREATE TABLE meta (
          key TEXT PRIMARY KEY,
          value TEXT NOT NULL
        );
        CREATE TABLE keys (
          id TEXT PRIMARY KEY,
          key_hash BLOB NOT NULL UNIQUE,
          key_prefix TEXT NOT NULL,
          name TEXT NOT NULL,
          user_id TEXT NOT NULL,
          team_id TEXT NOT NULL,
          status INTEGER NOT NULL,
          expires_at_ms INTEGER NULL,
          created_at_ms INTEGER NOT NULL,
          updated_revision INTEGER NOT NULL
        );
        CREATE TABLE audit_log (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          at TEXT NOT NULL,
          event TEXT NOT NULL,
          key_id TEXT NULL,
          revision INTEGER NULL,
          detail TEXT NOT NULL
        );
        CREATE INDEX audit_log_at ON audit_log (at);
        CREATE TABLE request_log (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          at TEXT NOT NULL,
          request_id TEXT NOT NULL,
          key_id TEXT NULL,
          model TEXT NULL,
          status INTEGER NOT NULL,
          prompt_tokens INTEGER NULL,
          completion_tokens INTEGER NULL,
          total_tokens INTEGER NULL,
          latency_ms REAL NOT NULL,
          stream INTEGER NOT NULL,
          error TEXT NULL
        );
        CREATE INDEX request_log_at ON request_log (at);
      `);
    },
  },
  {
    name: "2025-02-01T00:00:00_key-scopes-and-signing-keys",
    up(db) {
      db.exec(`
        ALTER TABLE keys ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE keys ADD COLUMN metadata_json TEXT NOT NULL DEFAULT '';
        ALTER TABLE keys ADD COLUMN previous_key_hash BLOB NULL;
        ALTER TABLE keys ADD COLUMN previous_key_expires_at_ms INTEGER NULL;
        CREATE TABLE signing_keys (
          id TEXT PRIMARY KEY,
          public_key BLOB NOT NULL,
          created_at_ms INTEGER NOT NULL,
          updated_revision INTEGER NOT NULL
        );
        ALTER TABLE request_log ADD COLUMN metadata TEXT NULL;
        ALTER TABLE request_log ADD COLUMN ephemeral INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE request_log ADD COLUMN ephemeral_token_id TEXT NULL;
      `);
      // Earlier releases dropped these fields (and signing keys) when they
      // applied changes, so a cache written by them lacks scopes that the
      // control plane believes are synced. Ask for a full snapshot; the cached
      // keys keep serving meanwhile, exactly as they did before the upgrade.
      db.prepare(
        `INSERT INTO meta (key, value) SELECT 'resync_required', '1' WHERE EXISTS (SELECT 1 FROM meta WHERE key = 'revision')`,
      ).run();
    },
  },
  {
    name: "2025-03-01T00:00:00_request-log-provider",
    up(db) {
      // Which configured provider a request was routed to; null when it was refused before routing.
      db.exec(`ALTER TABLE request_log ADD COLUMN provider TEXT NULL;`);
    },
  },
  {
    name: "2025-04-01T00:00:00_model-prices",
    up(db) {
      db.exec(`
        CREATE TABLE model_prices (
          provider TEXT NOT NULL,
          model TEXT NOT NULL,
          input_usd_per_mtok REAL NOT NULL,
          output_usd_per_mtok REAL NOT NULL,
          cache_read_usd_per_mtok REAL NULL,
          cache_write_usd_per_mtok REAL NULL,
          source TEXT NOT NULL,
          updated_revision INTEGER NOT NULL,
          PRIMARY KEY (provider, model)
        );
        -- What the request cost in USD by the synced price table; null when no price was known.
        ALTER TABLE request_log ADD COLUMN cost_usd REAL NULL;
      `);
      // A cache written by an earlier release skipped the price changes it
      // could not apply, so its revision is current without the prices: ask
      // for a full snapshot, serving the cached keys meanwhile.
      db.prepare(
        `INSERT OR IGNORE INTO meta (key, value) SELECT 'resync_required', '1' WHERE EXISTS (SELECT 1 FROM meta WHERE key = 'revision')`,
      ).run();
    },
  },
  {
    name: "2025-04-15T00:00:00_request-attempts",
    up(db) {
      // attempts: JSON [{provider, status | reason, latency_ms}], one per upstream call (fallbacks included);
      // null when no upstream was called. Cache tokens are apart from prompt_tokens, whose meaning stays the provider's.
      db.exec(`
        ALTER TABLE request_log ADD COLUMN attempts TEXT NULL;
        ALTER TABLE request_log ADD COLUMN cache_read_tokens INTEGER NULL;
        ALTER TABLE request_log ADD COLUMN cache_write_tokens INTEGER NULL;
      `);
    },
  },
  {
    name: "2025-05-01T00:00:00_quotas",
    up(db) {
      db.exec(`
        -- Units this gateway consumed per fleet counter window, so a restart keeps counting them.
        CREATE TABLE quota_consumed (
          counter TEXT NOT NULL,
          window_key TEXT NOT NULL,
          consumed INTEGER NOT NULL,
          ends_at_ms INTEGER NOT NULL,
          PRIMARY KEY (counter, window_key)
        );
        -- Usage waiting for the control plane's acknowledgement; seq is the dedupe key there.
        CREATE TABLE usage_outbox (
          seq INTEGER PRIMARY KEY AUTOINCREMENT,
          created_at_ms INTEGER NOT NULL,
          records TEXT NOT NULL
        );
      `);
      // The control plane dedupes reports by (gateway, seq). A cache file
      // recreated after damage keeps the gateway id, so its sequence starts
      // from the clock, past any seq the old file could have used.
      db.prepare(`INSERT INTO sqlite_sequence (name, seq) VALUES ('usage_outbox', ?)`).run(Date.now() * 1000);
    },
  },
  MCP_SERVERS_MIGRATION,
];

/**
 * Applies the migrations not yet recorded in `schema_migrations`, each in its
 * own transaction. Returns the names it applied.
 */
export function migrate(db: Database, list: readonly Migration[] = migrations): string[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)`);
  const done = new Set(
    (db.prepare(`SELECT name FROM schema_migrations`).all() as { name: string }[]).map((r) => r.name),
  );
  const record = db.prepare(`INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`);
  const applied: string[] = [];
  for (const m of list) {
    if (done.has(m.name)) continue;
    db.transaction(() => {
      m.up(db);
      record.run(m.name, new Date().toISOString());
    })();
    applied.push(m.name);
  }
  return applied;
}
