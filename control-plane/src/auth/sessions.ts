import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { newId } from "@tollgate/shared";
import type { Db } from "../db/database.js";

/**
 * Dashboard sessions: an opaque random cookie value exchanged for an admin
 * credential. Only SHA-256 hashes are stored. The CSRF token is derived from the
 * cookie value (HMAC), so `GET /internal/sessions/current` can hand it out again
 * without the database ever holding it in the clear.
 */
export type ActorKind = "master" | "admin_token" | "user";
export type ActorRole = "admin" | "read_only" | "member";

export interface SessionActor {
  kind: ActorKind;
  id: string | null;
  role: ActorRole;
  org_id: string | null;
}

export interface Session {
  id: string;
  actor: SessionActor;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
  /** When the session ends if nothing happens before. */
  idleExpiresAt: Date;
}

export interface SessionLimits {
  idleMs: number;
  maxAgeMs: number;
}

interface DashboardSessionsTable {
  id: string;
  token_hash: Uint8Array;
  csrf_token_hash: Uint8Array;
  actor_kind: ActorKind;
  actor_id: string | null;
  org_id: string | null;
  role: ActorRole;
  created_at: Date;
  last_seen_at: Date;
  expires_at: Date;
}

/** The table lives in its own migration; the shared schema stays untouched. */
function sessions(db: Db) {
  return db.withTables<{ dashboard_sessions: DashboardSessionsTable }>();
}

/** How often a busy session refreshes last_seen_at: idle expiry needs no finer grain. */
const TOUCH_EVERY_MS = 5_000;

function sha256(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

export function csrfTokenFor(sessionToken: string): string {
  return createHmac("sha256", sessionToken).update("tollgate-csrf").digest("base64url");
}

/** The string each audit row and ctx.state.actor name for this actor. */
export function actorName(actor: SessionActor): string {
  return actor.kind === "master" ? "master_key" : `${actor.kind}:${actor.id}`;
}

export interface OpenedSession {
  session: Session;
  /** The cookie value: returned once, never stored. */
  token: string;
  csrfToken: string;
}

export async function openSession(
  db: Db,
  actor: SessionActor,
  limits: SessionLimits,
  now: Date,
): Promise<OpenedSession> {
  const token = randomBytes(32).toString("base64url");
  const csrfToken = csrfTokenFor(token);
  // A type-prefixed sortable id, in the same shape as every other id.
  const id = `ses_${newId("req", now.getTime()).slice(4)}`;
  const expiresAt = new Date(now.getTime() + limits.maxAgeMs);
  await purgeExpiredSessions(db, limits, now);
  await sessions(db)
    .insertInto("dashboard_sessions")
    .values({
      id,
      token_hash: sha256(token),
      csrf_token_hash: sha256(csrfToken),
      actor_kind: actor.kind,
      actor_id: actor.id,
      org_id: actor.org_id,
      role: actor.role,
      created_at: now,
      last_seen_at: now,
      expires_at: expiresAt,
    })
    .execute();
  return {
    session: { id, actor, createdAt: now, lastSeenAt: now, expiresAt, idleExpiresAt: idleEnd(now, expiresAt, limits) },
    token,
    csrfToken,
  };
}

function idleEnd(lastSeen: Date, expiresAt: Date, limits: SessionLimits): Date {
  return new Date(Math.min(lastSeen.getTime() + limits.idleMs, expiresAt.getTime()));
}

/** The live session of a cookie value, refreshing its idle timer; undefined when unknown or expired (and then removed). */
export async function findSession(
  db: Db,
  token: string,
  limits: SessionLimits,
  now: Date,
): Promise<Session | undefined> {
  const row = await sessions(db)
    .selectFrom("dashboard_sessions")
    .selectAll()
    .where("token_hash", "=", sha256(token))
    .executeTakeFirst();
  if (!row) return undefined;
  const lastSeen = new Date(row.last_seen_at);
  const expiresAt = new Date(row.expires_at);
  if (now.getTime() >= expiresAt.getTime() || now.getTime() >= lastSeen.getTime() + limits.idleMs) {
    await deleteSession(db, row.id);
    return undefined;
  }
  let seen = lastSeen;
  if (now.getTime() - lastSeen.getTime() >= TOUCH_EVERY_MS) {
    await sessions(db).updateTable("dashboard_sessions").set({ last_seen_at: now }).where("id", "=", row.id).execute();
    seen = now;
  }
  return {
    id: row.id,
    actor: { kind: row.actor_kind, id: row.actor_id, role: row.role, org_id: row.org_id },
    createdAt: new Date(row.created_at),
    lastSeenAt: seen,
    expiresAt,
    idleExpiresAt: idleEnd(seen, expiresAt, limits),
  };
}

/** Constant-time check of a presented CSRF token against the one of this cookie value. */
export function csrfMatches(sessionToken: string, presented: string | undefined): boolean {
  if (!presented) return false;
  return timingSafeEqual(sha256(presented), sha256(csrfTokenFor(sessionToken)));
}

export async function deleteSession(db: Db, id: string): Promise<void> {
  await sessions(db).deleteFrom("dashboard_sessions").where("id", "=", id).execute();
}

/** Drops sessions past either expiry; called on every sign-in so the table stays small. */
export async function purgeExpiredSessions(db: Db, limits: SessionLimits, now: Date): Promise<number> {
  const result = await sessions(db)
    .deleteFrom("dashboard_sessions")
    .where((eb) =>
      eb.or([eb("expires_at", "<=", now), eb("last_seen_at", "<=", new Date(now.getTime() - limits.idleMs))]),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Ends every session opened by one credential (a revoked admin token, a deleted user). */
export async function deleteSessionsOfActor(db: Db, kind: ActorKind, id: string): Promise<number> {
  const result = await sessions(db)
    .deleteFrom("dashboard_sessions")
    .where("actor_kind", "=", kind)
    .where("actor_id", "=", id)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
