import type { KeyObject } from "node:crypto";
import type { Change } from "@tollgate/shared";
import type { CompiledKey } from "../auth/key-index.js";
import type { PriceRule } from "../pricing/price-index.js";
import type { McpServerRecord } from "../mcp/server-index.js";
import { mcpServerFromProto } from "../mcp/server-sync.js";
import type { AuditEvent } from "./audit-repository.js";
import { META } from "./meta-repository.js";
import type { GatewayStore } from "./store.js";
import { ApplyError, describe, describePrice, prepareKey, prepareSigningKey, toPriceRule } from "./synced-records.js";

export interface DeltaResult {
  revision: number;
  upserts: number;
  deletes: number;
  signingKeyUpserts: number;
  modelPriceChanges: number;
}

/** What a committed delta changes in the index. */
export type IndexOp =
  | { kind: "upsert"; key: CompiledKey }
  | { kind: "delete"; id: string }
  | { kind: "signing"; id: string; publicKey: KeyObject }
  | { kind: "price"; rule: PriceRule }
  | { kind: "price_delete"; provider: string; model: string }
  | { kind: "mcp_server"; server: McpServerRecord }
  | { kind: "mcp_server_delete"; id: string };

/**
 * Writes consecutive changes and the last revision to SQLite, with an audit
 * row for each change it applies. Runs inside the caller's transaction; the returned ops are for
 * the in-memory indexes, applied only after that transaction commits.
 */
export function writeChanges(
  store: GatewayStore,
  changes: Change[],
  at: string,
  appliedRevision: number,
): { result: DeltaResult; ops: IndexOp[] } {
  const ops: IndexOp[] = [];
  let upserts = 0;
  let deletes = 0;
  let signingKeyUpserts = 0;
  let modelPriceChanges = 0;
  let last = appliedRevision;
  for (const c of changes) {
    const revision = Number(c.revision);
    if (revision !== last + 1) throw new ApplyError(`change revision ${revision} does not follow ${last}`);
    last = revision;
    const audit = (event: AuditEvent, detail: Record<string, unknown>, keyId: string | null = null) =>
      store.audit.insert({ at, event, keyId, revision, detail });
    switch (c.op.case) {
      case "keyUpsert": {
        const { stored, compiled } = prepareKey(c.op.value);
        store.keys.upsert(stored, revision);
        audit("key_upsert", describe(stored), stored.id);
        ops.push({ kind: "upsert", key: compiled });
        upserts++;
        break;
      }
      case "keyDelete": {
        const id = c.op.value.id;
        const existed = store.keys.delete(id);
        audit("key_delete", { existed }, id);
        ops.push({ kind: "delete", id });
        deletes++;
        break;
      }
      case "signingKeyUpsert": {
        const { stored, publicKey } = prepareSigningKey(c.op.value);
        store.signingKeys.upsert(stored, revision);
        audit("signing_key_upsert", {
          signing_key_id: stored.id,
          created_at: new Date(stored.createdAtMs).toISOString(),
        });
        ops.push({ kind: "signing", id: stored.id, publicKey });
        signingKeyUpserts++;
        break;
      }
      case "modelPriceUpsert": {
        const rule = toPriceRule(c.op.value);
        store.modelPrices.upsert(rule, revision);
        audit("model_price_upsert", describePrice(rule));
        ops.push({ kind: "price", rule });
        modelPriceChanges++;
        break;
      }
      case "modelPriceDelete": {
        const { provider, model } = c.op.value;
        const existed = store.modelPrices.delete(provider, model);
        audit("model_price_delete", { provider, model, existed });
        ops.push({ kind: "price_delete", provider, model });
        modelPriceChanges++;
        break;
      }
      case "mcpServerUpsert": {
        const server = mcpServerFromProto(c.op.value);
        store.mcpServers.upsert(server, revision);
        // Not the URL: an admin may have put a token in its query string.
        audit("mcp_server_upsert", { mcp_server_id: server.id, name: server.name, auth_type: server.auth.type });
        ops.push({ kind: "mcp_server", server });
        break;
      }
      case "mcpServerDelete": {
        const id = c.op.value.id;
        store.mcpServers.delete(id);
        audit("mcp_server_delete", { mcp_server_id: id });
        ops.push({ kind: "mcp_server_delete", id });
        break;
      }
      default:
        // An op this gateway does not know (a newer control plane): nothing to
        // apply, but its revision still counts so the sequence stays whole.
        break;
    }
  }
  store.meta.set(META.revision, String(last));
  return { result: { revision: last, upserts, deletes, signingKeyUpserts, modelPriceChanges }, ops };
}
