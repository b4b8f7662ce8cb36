import type { Database } from "better-sqlite3";

/** An organization's token-signing public key, as synced. */
export interface StoredSigningKey {
  id: string;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Buffer;
  createdAtMs: number;
}

export interface SigningKeyRepository {
  all(): StoredSigningKey[];
  upsert(key: StoredSigningKey, revision: number): void;
  /** Removes every signing key (a snapshot replaces them all). */
  clear(): void;
}

interface Row {
  id: string;
  public_key: Buffer;
  created_at_ms: number;
}

export function createSigningKeyRepository(db: Database): SigningKeyRepository {
  const selectAll = db.prepare<[], Row>(`SELECT id, public_key, created_at_ms FROM signing_keys ORDER BY id`);
  const upsert = db.prepare(
    `INSERT INTO signing_keys (id, public_key, created_at_ms, updated_revision) VALUES (@id, @public_key, @created_at_ms, @updated_revision)
     ON CONFLICT(id) DO UPDATE SET public_key = excluded.public_key, created_at_ms = excluded.created_at_ms,
       updated_revision = excluded.updated_revision`,
  );
  const clear = db.prepare(`DELETE FROM signing_keys`);
  return {
    all: () => selectAll.all().map((r) => ({ id: r.id, publicKey: r.public_key, createdAtMs: r.created_at_ms })),
    upsert: (k, revision) => {
      upsert.run({ id: k.id, public_key: k.publicKey, created_at_ms: k.createdAtMs, updated_revision: revision });
    },
    clear: () => {
      clear.run();
    },
  };
}
