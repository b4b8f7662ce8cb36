import { createHash } from "node:crypto";
import { newId, randomBase62 } from "@tollgate/shared";
import type { Actor, AdminTokenRole } from "./roles.js";

/** Admin token secrets: `tga_` + 40 base62 characters (238 random bits), stored as SHA-256. */
export const ADMIN_TOKEN_PREFIX = "tga_";
const SECRET_PATTERN = /^tga_[0-9A-Za-z]{40}$/;
/** What lists show: enough to tell tokens apart, far too little to guess one. */
const SHOWN_PREFIX_LENGTH = 12;

export function hashAdminToken(secret: string): Buffer {
  return createHash("sha256").update(secret).digest();
}

export function isAdminTokenSecret(value: string): boolean {
  return value.startsWith(ADMIN_TOKEN_PREFIX);
}

export function looksLikeAdminToken(value: string): boolean {
  return SECRET_PATTERN.test(value);
}

export interface MintedAdminToken {
  id: string;
  secret: string;
  hash: Buffer;
  prefix: string;
}

/** A new token: its id, the secret shown once, and what is stored. */
export function mintAdminToken(now: Date = new Date()): MintedAdminToken {
  const secret = ADMIN_TOKEN_PREFIX + randomBase62(40);
  // A type-prefixed sortable id in the shape of every other id.
  return {
    id: `adt_${newId("req", now.getTime()).slice(4)}`,
    secret,
    hash: hashAdminToken(secret),
    prefix: secret.slice(0, SHOWN_PREFIX_LENGTH),
  };
}

/** A stored token as authentication sees it. */
export interface AdminTokenRecord {
  id: string;
  org_id: string;
  role: AdminTokenRole;
  expires_at: Date | null;
  revoked_at: Date | null;
}

/** The actor of a live token; undefined when revoked or expired. */
export function adminTokenActor(token: AdminTokenRecord, now: Date): Actor | undefined {
  if (token.revoked_at) return undefined;
  if (token.expires_at && token.expires_at.getTime() <= now.getTime()) return undefined;
  return { kind: "admin_token", id: token.id, role: token.role, org_id: token.org_id };
}
