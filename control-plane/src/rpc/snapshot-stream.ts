import { create } from "@bufbuild/protobuf";
import { SnapshotReason, SubscribeResponseSchema, type SubscribeResponse } from "@tollgate/shared";
import type { AppContext } from "../context.js";
import type { KeySyncRecord, ModelPriceRecord, SigningKeyRecord } from "../repositories/change-log.js";
import { countKeySyncRecords, keySyncRecordPages } from "../repositories/key-sync-records.js";
import { allMcpServerSyncRecords, type McpServerSyncRecord } from "../repositories/mcp-servers.js";
import { allModelPriceRecords } from "../repositories/model-prices.js";
import { currentRevision } from "../repositories/orgs.js";
import { allSigningKeyRecords } from "../repositories/signing-keys.js";
import { toKeyUpsert, toModelPrice, toSigningKey } from "./key-record.js";
import { toMcpServer } from "./mcp-server-record.js";

/** Keys per page read from Postgres and per snapshotChunk sent (see bench/README.md, "snapshot to a fresh gateway"). */
export const SNAPSHOT_PAGE = 1000;

export interface SnapshotStreamOptions {
  /** Keys per page read and per chunk sent; SNAPSHOT_PAGE by default. */
  pageSize?: number;
  /**
   * Runs inside the read transaction after the revision and key count (page 0) and after
   * each page of keys (1, 2, …): lets tests commit changes mid-read.
   */
  afterPage?: (page: number) => Promise<void>;
}

/** What a sent snapshot held, for the log line and the stream's cursor. */
export interface SnapshotSummary {
  revision: number;
  keys: number;
}

/** Everything but the keys, read first in the snapshot's transaction. */
interface SnapshotHead {
  revision: number;
  keyCount: number;
  signingKeys: SigningKeyRecord[];
  modelPrices: ModelPriceRecord[];
  mcpServers: McpServerSyncRecord[];
}

type Item = { kind: "head"; head: SnapshotHead } | { kind: "page"; keys: KeySyncRecord[] } | { kind: "done" };

/**
 * The read side's hand-over to the stream: the reader pushes without waiting, the stream
 * takes in order. Unbounded on purpose, see readSnapshot.
 */
class Handover {
  private readonly items: Item[] = [];
  private failure: { err: unknown } | undefined;
  private wake: (() => void) | undefined;
  /** Set when the stream stopped taking (gateway gone): the reader gives up at its next page. */
  closed = false;

  push(item: Item): void {
    this.items.push(item);
    this.wake?.();
  }

  fail(err: unknown): void {
    this.failure = { err };
    this.wake?.();
  }

  async take(): Promise<Item> {
    for (;;) {
      const item = this.items.shift();
      if (item) return item;
      if (this.failure) throw this.failure.err;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

class SnapshotAbandoned extends Error {}

/**
 * Reads the snapshot in one repeatable-read transaction (a consistent cut: the revision,
 * the key count and every page see the same state), handing each page of keys over as soon
 * as it is read, so that reading, encoding, sending and the gateway's work overlap.
 *
 * The reader never waits for the stream: the transaction (and, on PGlite, the one
 * connection) lasts only as long as reading takes, not as long as a slow gateway takes to
 * receive. The cost is that a slow gateway leaves the unsent pages in memory, which is at
 * most what the snapshot read held before it was paged.
 */
function readSnapshot(app: AppContext, orgId: string, out: Handover, options: SnapshotStreamOptions): Promise<void> {
  const pageSize = options.pageSize ?? SNAPSHOT_PAGE;
  return app.db
    .transaction()
    .setIsolationLevel("repeatable read")
    .execute(async (trx) => {
      // The first statement fixes the transaction's snapshot: the revision is read in it.
      const revision = await currentRevision(trx, orgId);
      out.push({
        kind: "head",
        head: {
          revision,
          keyCount: await countKeySyncRecords(trx, orgId),
          signingKeys: await allSigningKeyRecords(trx, orgId),
          modelPrices: await allModelPriceRecords(trx, orgId),
          mcpServers: await allMcpServerSyncRecords(trx, orgId),
        },
      });
      let page = 0;
      await options.afterPage?.(page);
      for await (const keys of keySyncRecordPages(trx, orgId, pageSize)) {
        if (out.closed) throw new SnapshotAbandoned();
        out.push({ kind: "page", keys });
        await options.afterPage?.(++page);
      }
    })
    .then(
      () => out.push({ kind: "done" }),
      (err: unknown) => out.fail(err),
    );
}

function chunk(keys: KeySyncRecord[], head: SnapshotHead | null): SubscribeResponse {
  return create(SubscribeResponseSchema, {
    event: {
      case: "snapshotChunk",
      value: {
        keys: keys.map(toKeyUpsert),
        signingKeys: head ? head.signingKeys.map(toSigningKey) : [],
        modelPrices: head ? head.modelPrices.map(toModelPrice) : [],
        mcpServers: head ? head.mcpServers.map(toMcpServer) : [],
      },
    },
  });
}

/**
 * A full snapshot of the organization as stream events: snapshotBegin, snapshotChunk of up
 * to one page of keys each, snapshotEnd. Returns what it sent.
 */
export async function* snapshotEvents(
  app: AppContext,
  orgId: string,
  reason: SnapshotReason,
  options: SnapshotStreamOptions = {},
): AsyncGenerator<SubscribeResponse, SnapshotSummary> {
  const handover = new Handover();
  const reading = readSnapshot(app, orgId, handover, options);
  try {
    const first = await handover.take();
    if (first.kind !== "head") throw new Error("snapshot read out of order");
    const { head } = first;
    yield create(SubscribeResponseSchema, {
      event: {
        case: "snapshotBegin",
        value: { revision: BigInt(head.revision), reason, orgId, keyCount: head.keyCount },
      },
    });
    // The first chunk carries the signing keys, the price table and the MCP servers, even when there are no API keys.
    let extras: SnapshotHead | null = head;
    for (let item = await handover.take(); item.kind === "page"; item = await handover.take()) {
      yield chunk(item.keys, extras);
      extras = null;
    }
    if (extras && (head.signingKeys.length > 0 || head.modelPrices.length > 0 || head.mcpServers.length > 0)) {
      yield chunk([], extras);
    }
    yield create(SubscribeResponseSchema, {
      event: { case: "snapshotEnd", value: { revision: BigInt(head.revision) } },
    });
    return { revision: head.revision, keys: head.keyCount };
  } finally {
    handover.closed = true;
    // The transaction ends (rolled back when abandoned) before the stream does.
    await reading;
  }
}
