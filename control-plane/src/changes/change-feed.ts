import type { Change } from "@tollgate/shared";
import type { Db } from "../db/database.js";
import { readChanges, type ChangeEntry } from "../repositories/change-log.js";

/** Entries one read of the log fetches at most. */
const READ_PAGE = 5000;

/** A change-log entry with its wire form built once for every stream. */
export interface FeedEntry extends ChangeEntry {
  message?: Change;
}

interface OrgFeed {
  /** Contiguous recent entries, ascending. */
  entries: FeedEntry[];
  /** Highest revision read from the log so far. */
  latest: number;
  /** The read in flight, and the notifier version it started at. */
  inflight: Promise<void> | undefined;
  inflightVersion: number;
  /** When the last completed read of the log started, and the notifier version then. */
  readAt: number;
  readVersion: number;
}

/**
 * Shares change-log reads between the streams of an organization. Without it,
 * every write costs one query per attached gateway; with it, one query per write
 * (coalesced) and the rest served from memory. Streams behind the cached window
 * read the log directly. Correctness never depends on the cache: a stream that
 * finds nothing new waits on the notifier version it saw before reading.
 *
 * Idle streams wake every heartbeat interval and read again, the safety net for a
 * notification another replica sent and this one missed. Those reads are shared
 * too: when nothing was notified since the last read of the organization's log and
 * that read is younger than `maxStaleMs`, "nothing new" is answered from memory.
 * With 50 idle gateways that is one query per organization per interval instead of 50.
 */
export class ChangeFeed {
  private readonly orgs = new Map<string, OrgFeed>();

  constructor(
    private readonly db: Db,
    private readonly version: (orgId: string) => number,
    private readonly maxStaleMs = 5_000,
    private readonly keep = 20_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Entries after `after`, at most `limit`, in revision order. */
  async read(orgId: string, after: number, limit: number): Promise<FeedEntry[]> {
    let feed = this.orgs.get(orgId);
    if (!feed) {
      // The window starts where the first reader stands.
      feed = { entries: [], latest: after, inflight: undefined, inflightVersion: -1, readAt: 0, readVersion: -1 };
      this.orgs.set(orgId, feed);
    }
    const windowStart = feed.entries.length > 0 ? feed.entries[0]!.revision - 1 : feed.latest;
    // A reader behind the window (catching up after a reconnect) reads the log itself.
    if (after < windowStart) return readChanges(this.db, orgId, after, limit);
    const cached = this.fromCache(feed, after, limit);
    if (cached && (cached.length > 0 || this.fresh(orgId, feed))) return cached;
    await this.refresh(orgId, feed);
    return this.fromCache(feed, after, limit) ?? readChanges(this.db, orgId, after, limit);
  }

  /** The cached slice after `after`, or undefined when the window does not hold `after + 1`. */
  private fromCache(feed: OrgFeed, after: number, limit: number): FeedEntry[] | undefined {
    if (after === feed.latest) return [];
    if (after > feed.latest) return undefined;
    const first = feed.entries[0];
    if (!first || first.revision > after + 1) return undefined;
    const start = after + 1 - first.revision;
    return feed.entries.slice(start, start + limit);
  }

  /** Nothing was notified since the last read of the log, and it is recent. */
  private fresh(orgId: string, feed: OrgFeed): boolean {
    return feed.readVersion === this.version(orgId) && this.now() - feed.readAt < this.maxStaleMs;
  }

  /** Reads what is new past the window, once for all streams waiting at this notifier version. */
  private async refresh(orgId: string, feed: OrgFeed): Promise<void> {
    const wanted = this.version(orgId);
    while (feed.inflight && feed.inflightVersion < wanted) await feed.inflight;
    if (feed.inflight) return feed.inflight;
    feed.inflightVersion = wanted;
    feed.inflight = (async () => {
      try {
        const startedAt = this.now();
        const fresh = await readChanges(this.db, orgId, feed.latest, READ_PAGE);
        this.append(feed, fresh);
        // A full page may have more behind it: only a read that reached the end vouches for "nothing new".
        if (fresh.length < READ_PAGE) {
          feed.readAt = startedAt;
          feed.readVersion = wanted;
        }
      } finally {
        feed.inflight = undefined;
      }
    })();
    return feed.inflight;
  }

  private append(feed: OrgFeed, fresh: ChangeEntry[]): void {
    if (fresh.length === 0) return;
    // Compaction removed entries past the window: restart it at what the log holds.
    if (fresh[0]!.revision !== feed.latest + 1) feed.entries = [];
    feed.entries.push(...fresh);
    feed.latest = fresh[fresh.length - 1]!.revision;
    if (feed.entries.length > this.keep) feed.entries.splice(0, feed.entries.length - this.keep);
  }
}
