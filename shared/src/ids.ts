import { Buffer } from "node:buffer";
import { randomFillSync } from "node:crypto";

// Crockford base32, lower case: sortable ids like the seeds' `team_01j...`.
const CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz";

export type IdPrefix = "org" | "team" | "user" | "ak" | "gw" | "gwt" | "req" | "aud" | "sk" | "alrt" | "mcp";

/** A type-prefixed ULID: 10 characters of millisecond time then 16 random ones. */
export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  // The gateway makes one per request: the time part is built once per millisecond, the random
  // part in one string from a byte buffer, not 26 one-character concatenations.
  if (now !== timeMs) {
    timeMs = now;
    let time = "";
    let t = now;
    for (let i = 0; i < 10; i++) {
      time = CROCKFORD[t % 32] + time;
      t = Math.floor(t / 32);
    }
    timeText = time;
  }
  const at = randomBytes16();
  for (let i = 0; i < 16; i++) randomChars[i] = CROCKFORD_CODES[pool[at + i]! % 32]!;
  return `${prefix}_${timeText}${randomChars.toString("latin1")}`;
}

const CROCKFORD_CODES = Uint8Array.from(CROCKFORD, (c) => c.charCodeAt(0));
/** The last time part built, and the millisecond it is for. */
let timeMs = Number.NaN;
let timeText = "";
/** The random part's characters, reused by every call (newId is synchronous). */
const randomChars = Buffer.alloc(16);

// Random bytes drawn from the OS in 4 KiB chunks: one randomFillSync per 256 ids
// instead of one randomBytes call (and allocation) per id, which the gateway makes per request.
const POOL_SIZE = 4096;
const pool = new Uint8Array(POOL_SIZE);
let poolOffset = POOL_SIZE;

/** The offset of 16 fresh random bytes in `pool`. */
function randomBytes16(): number {
  if (poolOffset + 16 > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const at = poolOffset;
  poolOffset += 16;
  return at;
}

const ID_RE = /^([a-z]+)_[0-9a-hjkmnp-tv-z]{26}$/;

/** True when `value` is an id of the given type. */
export function isId(value: unknown, prefix: IdPrefix): value is string {
  if (typeof value !== "string") return false;
  const m = ID_RE.exec(value);
  return m !== null && m[1] === prefix;
}
