import type { AuthFailureReason } from "./authenticate.js";
import { indexKeyOfApiKey } from "./key-index.js";

export interface UnsyncedKeysOptions {
  /**
   * True while a key the control plane already committed may be missing here:
   * not connected, or connected but not yet caught up (see SyncState.mayMissKeys).
   */
  mayMissKeys: () => boolean;
  /** How long a (client, key) pair counts once; the brute-force window. */
  windowMs: number;
  now: () => number;
  /** Most pairs remembered; the oldest go first. */
  maxEntries?: number;
}

/**
 * Tells a guess from a key this gateway cannot know yet. A well-formed key with
 * a valid checksum that the index does not hold is either a guess or a key whose
 * create has not reached this gateway. It never counts while the gateway may be
 * missing keys (disconnected, or catching up after a reconnect: the control plane
 * may hold it). While connected and caught up, a create reaches the gateway within
 * milliseconds, before its create call answers (read-your-writes), so an unknown
 * key then counts — but a client retrying the same key counts once per window: a
 * repeat teaches a guesser nothing, and a client polling a key that is still on
 * its way is never blocked for it. Distinct unknown keys all count.
 */
export class UnsyncedKeys {
  private readonly seen = new Map<string, number>();
  private readonly maxEntries: number;

  constructor(private readonly options: UnsyncedKeysOptions) {
    this.maxEntries = options.maxEntries ?? 50_000;
  }

  /** Whether a failed credential of `reason` counts toward blocking `client`. */
  countsAsGuess(reason: AuthFailureReason, client: string, token: string | null | undefined): boolean {
    if (reason === "ephemeral_unknown_signing_key") return !this.options.mayMissKeys();
    if (reason !== "unknown" || typeof token !== "string") return true;
    if (this.options.mayMissKeys()) return false;
    const now = this.options.now();
    const pair = `${client} ${indexKeyOfApiKey(token)}`;
    const at = this.seen.get(pair);
    if (at !== undefined && now - at <= this.options.windowMs) return false;
    this.seen.delete(pair);
    if (this.seen.size >= this.maxEntries) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(pair, now);
    return true;
  }
}
