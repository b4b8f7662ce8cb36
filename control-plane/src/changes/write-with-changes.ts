import { sql } from "kysely";
import type { DatabaseHandle, Db } from "../db/database.js";
import { appendChanges, type ChangeInput } from "../repositories/change-log.js";
import { auditRow, insertAuditRows, type AuditEntryInput, type AuditRow } from "../repositories/audit-log.js";
import { keySyncRecords } from "../repositories/key-sync-records.js";
import { syncTrace } from "@tollgate/shared";
import { CHANGES_CHANNEL, REVOKED_TOKEN_PREFIX } from "./channels.js";
import type { ChangeNotifier } from "./notifier.js";

export interface WriteScope {
  trx: Db;
  /** Queue a change for the change log; written with its revision in this transaction. */
  emit(change: ChangeInput): void;
  /** Queue an audit row; written with the change log in one statement (or alone when nothing changed). */
  audit(entry: AuditEntryInput): void;
}

/**
 * Runs an admin write in one transaction together with the change-log entries
 * and audit rows it emits, which one statement writes at the end with the
 * revisions and the NOTIFY. Revisions are allocated last, so the organization's
 * row lock is held for as short a time as possible. After commit, local streams
 * are woken; other replicas learn of it through NOTIFY, which Postgres delivers
 * at commit.
 */
export async function writeWithChanges<T>(
  app: { db: Db; dbKind: DatabaseHandle["kind"]; notifier: ChangeNotifier },
  orgId: string,
  fn: (scope: WriteScope) => Promise<T>,
): Promise<{ result: T; revision: number | null }> {
  const out = await app.db.transaction().execute(async (trx) => {
    const changes: ChangeInput[] = [];
    const audits: AuditRow[] = [];
    const result = await fn({ trx, emit: (c) => changes.push(c), audit: (e) => audits.push(auditRow(e)) });
    const revision = await appendChanges(trx, orgId, changes, {
      audits,
      ...(app.dbKind === "postgres" ? { notifyChannel: CHANGES_CHANNEL } : {}),
    });
    if (revision === null && audits.length > 0) await insertAuditRows(audits).execute(trx);
    return { result, revision };
  });
  if (out.revision !== null) {
    syncTrace("commit", orgId, out.revision);
    app.notifier.notify(orgId);
    syncTrace("notify", orgId, out.revision);
  }
  return out;
}

/**
 * Tells every replica, at commit, that a gateway token was revoked, so each
 * closes that token's streams; the local replica does so itself after commit.
 */
export async function publishTokenRevocation(trx: Db, dbKind: DatabaseHandle["kind"], tokenId: string): Promise<void> {
  if (dbKind === "postgres")
    await sql`select pg_notify(${CHANGES_CHANNEL}, ${REVOKED_TOKEN_PREFIX + tokenId})`.execute(trx);
}

/** Re-sends keys whose synced record changed with something else: their owner's team or limits. */
export async function resyncKeys({ trx, emit }: WriteScope, orgId: string, keyIds: string[]): Promise<void> {
  for (const record of await keySyncRecords(trx, orgId, keyIds))
    emit({ kind: "key_upsert", resourceId: record.id, payload: record });
}
