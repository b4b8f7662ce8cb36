import { randomBytes } from "node:crypto";

// Crockford base32, lower case: sortable ids like the seeds' `team_01j...`.
const CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz";

export type IdPrefix = "org" | "team" | "user" | "ak" | "gw" | "gwt" | "req" | "aud" | "sk" | "alrt";

/** A type-prefixed ULID: 10 characters of millisecond time then 16 random ones. */
export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  let rand = "";
  for (const byte of randomBytes(16)) rand += CROCKFORD[byte % 32];
  return `${prefix}_${time}${rand}`;
}

const ID_RE = /^([a-z]+)_[0-9a-hjkmnp-tv-z]{26}$/;

/** True when `value` is an id of the given type. */
export function isId(value: unknown, prefix: IdPrefix): value is string {
  if (typeof value !== "string") return false;
  const m = ID_RE.exec(value);
  return m !== null && m[1] === prefix;
}
