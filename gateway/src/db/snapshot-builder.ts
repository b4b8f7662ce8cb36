import type { KeyObject } from "node:crypto";
import type { KeyUpsert, McpServer, ModelPrice, SigningKey, SnapshotReason } from "@tollgate/shared";
import type { CompiledKey } from "../auth/key-index.js";
import type { StoredKey } from "../auth/stored-key.js";
import type { PriceRule } from "../pricing/price-index.js";
import type { McpServerRecord } from "../mcp/server-index.js";
import { mcpServerFromProto } from "../mcp/server-sync.js";
import { KeyInterner } from "./key-repository.js";
import type { StoredSigningKey } from "./signing-key-repository.js";
import { ApplyError, prepareKey, prepareSigningKey, toPriceRule } from "./synced-records.js";

/** What a snapshot says of itself before its keys: the cut's revision, its organization, why it was sent. */
export interface SnapshotHead {
  revision: number;
  orgId: string;
  reason: SnapshotReason;
}

/** One part of a snapshot's content (a snapshotChunk; a whole snapshot is one part). */
export interface SnapshotPart {
  keys: KeyUpsert[];
  /** The organization's token-signing public keys; they replace the cached ones. */
  signingKeys?: SigningKey[];
  /** The organization's price table; it replaces the cached one. */
  modelPrices?: ModelPrice[];
  /** The organization's MCP servers; they replace the cached ones. */
  mcpServers?: McpServer[];
}

/**
 * A snapshot being received. Each part is validated and compiled as it arrives, so that work
 * overlaps the transfer of the next parts and the wire messages can go as soon as they are
 * read; the result lives only here, in memory, until KeyCache.commitSnapshot writes it in one
 * transaction. A snapshot that never ends (stream lost, gateway stopped) is simply dropped:
 * the cache and what the gateway serves never saw any of it.
 */
export class SnapshotBuilder {
  readonly stored: StoredKey[] = [];
  readonly compiled: CompiledKey[] = [];
  readonly signingKeys: { stored: StoredSigningKey; publicKey: KeyObject }[] = [];
  readonly prices: PriceRule[] = [];
  readonly mcpServers: McpServerRecord[] = [];
  private readonly seen = new Set<string>();
  private readonly seenSigning = new Set<string>();
  private readonly seenPrices = new Set<string>();
  private readonly seenServers = new Set<string>();
  private readonly interner = new KeyInterner();

  constructor(readonly head: SnapshotHead) {}

  /** Keys received so far. */
  get keyCount(): number {
    return this.stored.length;
  }

  /** Checks and compiles one part; throws ApplyError (the snapshot cannot be applied) on a bad or repeated record. */
  add(part: SnapshotPart): void {
    for (const k of part.keys) {
      const ready = prepareKey(k, this.interner);
      if (this.seen.has(ready.stored.id)) throw new ApplyError(`snapshot lists key ${ready.stored.id} twice`);
      this.seen.add(ready.stored.id);
      this.stored.push(ready.stored);
      this.compiled.push(ready.compiled);
    }
    for (const k of part.signingKeys ?? []) {
      const ready = prepareSigningKey(k);
      if (this.seenSigning.has(ready.stored.id))
        throw new ApplyError(`snapshot lists signing key ${ready.stored.id} twice`);
      this.seenSigning.add(ready.stored.id);
      this.signingKeys.push(ready);
    }
    for (const p of part.modelPrices ?? []) {
      const rule = toPriceRule(p);
      const id = `${rule.provider}/${rule.model}`;
      if (this.seenPrices.has(id)) throw new ApplyError(`snapshot lists model price ${id} twice`);
      this.seenPrices.add(id);
      this.prices.push(rule);
    }
    for (const m of part.mcpServers ?? []) {
      const server = mcpServerFromProto(m);
      if (this.seenServers.has(server.name)) throw new ApplyError(`snapshot lists MCP server ${server.name} twice`);
      this.seenServers.add(server.name);
      this.mcpServers.push(server);
    }
  }
}
