import type { Database } from "better-sqlite3";

/** A cached key as the gateway stores it: never the secret, only its SHA-256. */
export interface StoredKey {
  id: string;
  keyHash: Buffer;
  prefix: string;
  name: string;
  userId: string;
  teamId: string;
  /** KeyStatus enum value. */
  status: number;
  expiresAtMs: number | null;
  createdAtMs: number;
}

interface KeyRow {
  id: string;
  key_hash: Buffer;
  key_prefix: string;
  name: string;
  user_id: string;
  team_id: string;
  status: number;
  expires_at_ms: number | null;
  created_at_ms: number;
  updated_revision: number;
}

export interface KeyRepository {
  all(): StoredKey[];
  get(id: string): StoredKey | undefined;
  upsert(key: StoredKey, revision: number): void;
  delete(id: string): boolean;
  count(): number;
}

function fromRow(r: KeyRow): StoredKey {
  return {
    id: r.id,
    keyHash: r.key_hash,
    prefix: r.key_prefix,
    name: r.name,
    userId: r.user_id,
    teamId: r.team_id,
    status: r.status,
    expiresAtMs: r.expires_at_ms,
    createdAtMs: r.created_at_ms,
  };
}

export function createKeyRepository(db: Database): KeyRepository {
  const selectAll = db.prepare<[], KeyRow>(`SELECT * FROM keys`);
  const selectOne = db.prepare<[string], KeyRow>(`SELECT * FROM keys WHERE id = ?`);
  const upsert = db.prepare(
    `INSERT INTO keys (id, key_hash, key_prefix, name, user_id, team_id, status, expires_at_ms, created_at_ms, updated_revision)
     VALUES (@id, @key_hash, @key_prefix, @name, @user_id, @team_id, @status, @expires_at_ms, @created_at_ms, @updated_revision)
     ON CONFLICT(id) DO UPDATE SET
       key_hash = excluded.key_hash, key_prefix = excluded.key_prefix, name = excluded.name,
       user_id = excluded.user_id, team_id = excluded.team_id, status = excluded.status,
       expires_at_ms = excluded.expires_at_ms, created_at_ms = excluded.created_at_ms,
       updated_revision = excluded.updated_revision`,
  );
  const del = db.prepare<[string]>(`DELETE FROM keys WHERE id = ?`);
  const count = db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM keys`);
  return {
    all: () => selectAll.all().map(fromRow),
    get: (id) => {
      const r = selectOne.get(id);
      return r ? fromRow(r) : undefined;
    },
    upsert: (k, revision) => {
      upsert.run({
        id: k.id,
        key_hash: k.keyHash,
        key_prefix: k.prefix,
        name: k.name,
        user_id: k.userId,
        team_id: k.teamId,
        status: k.status,
        expires_at_ms: k.expiresAtMs,
        created_at_ms: k.createdAtMs,
        updated_revision: revision,
      });
    },
    delete: (id) => del.run(id).changes > 0,
    count: () => count.get()?.n ?? 0,
  };
}
