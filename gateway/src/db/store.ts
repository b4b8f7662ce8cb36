import { openDatabase, type Database } from "./database.js";
import { createAuditRepository, type AuditRepository } from "./audit-repository.js";
import { createKeyRepository, type KeyRepository } from "./key-repository.js";
import { createMcpServerRepository, type McpServerRepository } from "./mcp-server-repository.js";
import { createMetaRepository, type MetaRepository } from "./meta-repository.js";
import { createModelPriceRepository, type ModelPriceRepository } from "./model-price-repository.js";
import { createRequestLogRepository, type RequestLogRepository } from "./request-log-repository.js";
import { createSigningKeyRepository, type SigningKeyRepository } from "./signing-key-repository.js";

/** The gateway's SQLite file and its repositories. */
export interface GatewayStore {
  db: Database;
  path: string;
  migrated: string[];
  meta: MetaRepository;
  keys: KeyRepository;
  signingKeys: SigningKeyRepository;
  modelPrices: ModelPriceRepository;
  mcpServers: McpServerRepository;
  audit: AuditRepository;
  requestLog: RequestLogRepository;
  close(): void;
}

export function openStore(dataDir: string): GatewayStore {
  const { db, path, migrated } = openDatabase(dataDir);
  return {
    db,
    path,
    migrated,
    meta: createMetaRepository(db),
    keys: createKeyRepository(db),
    signingKeys: createSigningKeyRepository(db),
    modelPrices: createModelPriceRepository(db),
    mcpServers: createMcpServerRepository(db),
    audit: createAuditRepository(db),
    requestLog: createRequestLogRepository(db),
    close: () => {
      if (db.open) db.close();
    },
  };
}
