import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fdatasyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import type { Logger } from "@tollgate/shared";

/**
 * The usage journal: one line per settled request, appended with ONE
 * synchronous write(2) on a file opened O_APPEND, before the answer's last
 * bytes go out. No fsync by default: once write(2) returns, the line is in the
 * kernel's page cache, which outlives the process, so a kill -9 (or a crash of
 * Node) cannot lose it. A power loss or a kernel crash can still lose the last
 * few seconds of lines the kernel had not written back yet, unless `fsync` is
 * set (one fdatasync per request, a disk flush each: far slower).
 *
 * The usage outbox moves usage into SQLite in batches; each batch that carries
 * usage also stores, in the same transaction, a checkpoint: the journal
 * position (segment, byte offset) up to which every line is in SQLite. At
 * start, the lines after the checkpoint are replayed into the outbox exactly
 * once (their outbox row and the new checkpoint commit together), so whatever
 * point a kill -9 hits, nothing is lost and nothing counts twice.
 *
 * Lines live in numbered segments (`usage-journal/<n>.log`). A new segment is
 * started at every start and once the current one has grown past
 * `rotateBytes`; a segment is deleted once a committed checkpoint lies beyond it.
 */

/** One request's usage, as the journal keeps it. */
export interface JournalUsage {
  keyId: string;
  userId: string;
  teamId: string;
  atMs: number;
  inputTokens: number;
  outputTokens: number;
  costMicroUsd: number;
}

/** A position in the journal: every line before it is in SQLite once it is committed as the checkpoint. */
export interface JournalPosition {
  segment: number;
  offset: number;
}

export interface UsageJournalOptions {
  logger: Logger;
  /** fdatasync after every line: survives a power loss too, at the cost of a disk flush per request. */
  fsync?: boolean;
  /** Size past which the next batch starts a new segment (so the committed ones can be deleted). */
  rotateBytes?: number;
}

/** What a replay found after the checkpoint. */
export interface JournalReplay {
  entries: JournalUsage[];
  /** Lines that failed their checksum or did not parse (a torn last line, a damaged disk block). */
  skipped: number;
  /** Lines seen twice (same id): counted once. */
  duplicates: number;
}

export const JOURNAL_DIR = "usage-journal";
const DEFAULT_ROTATE_BYTES = 4 * 1024 * 1024;

/** A copy of the last checkpoint committed, beside the segments. */
const CHECKPOINT_COPY = "checkpoint";

/**
 * The copy's text: both numbers zero-padded to a fixed width, so each write covers the
 * whole of the last one (no truncate needed); parsePosition reads it as formatPosition's.
 */
function copyText(p: JournalPosition): string {
  return `${String(p.segment).padStart(20, "0")}:${String(p.offset).padStart(20, "0")}`;
}

function isBefore(a: JournalPosition, b: JournalPosition): boolean {
  return a.segment < b.segment || (a.segment === b.segment && a.offset < b.offset);
}

export function formatPosition(p: JournalPosition): string {
  return `${p.segment}:${p.offset}`;
}

export function parsePosition(text: string | undefined): JournalPosition {
  const m = /^(\d+):(\d+)$/.exec(text ?? "");
  return m ? { segment: Number(m[1]), offset: Number(m[2]) } : { segment: 0, offset: 0 };
}

/** `<crc32 of the JSON, 8 hex digits> <JSON array>\n`: a torn or damaged line fails its checksum. */
export function encodeLine(id: string, u: JournalUsage): string {
  // JSON has no NaN or Infinity: an odd count from an upstream is written as 0 (the outbox counts it so too).
  const n = (v: number) => (Number.isFinite(v) ? v : 0);
  const json = JSON.stringify([
    id,
    u.keyId,
    u.userId,
    u.teamId,
    n(u.atMs),
    n(u.inputTokens),
    n(u.outputTokens),
    n(u.costMicroUsd),
  ]);
  return `${crc32Hex(json)} ${json}\n`;
}

/** Two hex digits per byte value. */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/** The CRC-32 of `text` as 8 lower-case hex digits: `toString(16)` on a number goes through a runtime call (fmod) per request. */
function crc32Hex(text: string): string {
  const c = crc32(text);
  return HEX[c >>> 24]! + HEX[(c >>> 16) & 255]! + HEX[(c >>> 8) & 255]! + HEX[c & 255]!;
}

/** The line's id and usage, or null when it is torn, damaged or not one of ours. */
export function decodeLine(line: string): { id: string; usage: JournalUsage } | null {
  if (line.length < 10 || line[8] !== " ") return null;
  const json = line.slice(9);
  if (crc32Hex(json) !== line.slice(0, 8)) return null;
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return null;
  }
  if (!Array.isArray(v) || v.length !== 8) return null;
  const [id, keyId, userId, teamId, atMs, inputTokens, outputTokens, costMicroUsd] = v as unknown[];
  if (typeof id !== "string" || typeof keyId !== "string" || typeof userId !== "string" || typeof teamId !== "string")
    return null;
  const nums = [atMs, inputTokens, outputTokens, costMicroUsd];
  if (!nums.every((n) => typeof n === "number" && Number.isFinite(n))) return null;
  return {
    id,
    usage: {
      keyId,
      userId,
      teamId,
      atMs: atMs as number,
      inputTokens: inputTokens as number,
      outputTokens: outputTokens as number,
      costMicroUsd: costMicroUsd as number,
    },
  };
}

export class UsageJournal {
  private fd = -1;
  private segment = 0;
  private offset = 0;
  /** A write failed part-way: the next line goes to a new segment, never after a partial one. */
  private broken = false;
  /** recover() has run (and close() has not): lines may be appended. */
  private started = false;
  private failures = 0;
  private lastFailureLogMs = 0;
  private readonly epoch = randomBytes(6).toString("base64url");
  private seq = 0;
  private readonly rotateBytes: number;
  /** No segment before this one is left on disk. */
  private oldest = 0;
  /** The checkpoint copy, open once the first commit writes it. */
  private copyFd = -1;
  /** Lines enqueued and not yet written, and the promise their answers await. */
  private queued: string[] = [];
  private flushScheduled = false;
  private barrier: Promise<void> | undefined;
  private releaseBarrier: (() => void) | undefined;

  constructor(
    readonly dir: string,
    private readonly options: UsageJournalOptions,
  ) {
    this.rotateBytes = options.rotateBytes ?? DEFAULT_ROTATE_BYTES;
    mkdirSync(dir, { recursive: true });
  }

  /** Segments on disk, oldest first. */
  segments(): number[] {
    return readdirSync(this.dir)
      .map((f) => /^(\d+)\.log$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  private readCopy(): JournalPosition {
    try {
      return parsePosition(readFileSync(join(this.dir, CHECKPOINT_COPY), "utf8"));
    } catch {
      return { segment: 0, offset: 0 };
    }
  }

  private path(segment: number): string {
    return join(this.dir, `${segment}.log`);
  }

  /**
   * Reads the lines after `checkpoint` (each id once; torn or damaged lines
   * skipped), then starts a new segment for this process: the segments read
   * are deleted by `committed` once a checkpoint past them is in SQLite.
   */
  recover(committed: JournalPosition): JournalReplay {
    // The copy beside the journal is never ahead of SQLite's (written after the commit); it is
    // only later when the SQLite file was replaced (a damaged cache moved aside): then the lines
    // the old file had committed are not counted again.
    const copy = this.readCopy();
    const checkpoint = isBefore(committed, copy) ? copy : committed;
    const replay: JournalReplay = { entries: [], skipped: 0, duplicates: 0 };
    const seen = new Set<string>();
    const segments = this.segments();
    this.oldest = segments[0] ?? 0;
    for (const segment of segments) {
      if (segment < checkpoint.segment) continue;
      const bytes = readFileSync(this.path(segment));
      // The offset counts bytes: slice before decoding.
      const lines = bytes
        .subarray(segment === checkpoint.segment ? checkpoint.offset : 0)
        .toString("utf8")
        .split("\n");
      // A last line without its newline is torn (killed mid-write): it was never answered for.
      if (lines.at(-1) !== "") replay.skipped++;
      lines.pop();
      for (const line of lines) {
        const entry = decodeLine(line);
        if (!entry) replay.skipped++;
        else if (seen.has(entry.id)) replay.duplicates++;
        else {
          seen.add(entry.id);
          replay.entries.push(entry.usage);
        }
      }
    }
    this.started = true;
    this.startSegment(Math.max(checkpoint.segment, segments.at(-1) ?? 0) + 1);
    return replay;
  }

  /** Appends one line with one write(2) now. Never throws: a failing disk is logged and counted, the usage stays in memory. */
  append(u: JournalUsage): void {
    if (this.push(u)) this.flush();
  }

  /**
   * Queues one line for the write(2) that takes every line queued in this turn of
   * the event loop (setImmediate): under load one call writes the lines of all the
   * answers that settled together, instead of one call each. `written()` is the
   * barrier an answer awaits before its last bytes (kill -9 safe as append's).
   */
  enqueue(u: JournalUsage): void {
    if (this.push(u) && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushSoon);
    }
  }

  /** Resolves once the lines queued so far are written (or their write failed: logged, as append's); undefined when none wait. */
  written(): Promise<void> | undefined {
    if (this.queued.length === 0) return undefined;
    this.barrier ??= new Promise<void>((resolve) => {
      this.releaseBarrier = resolve;
    });
    return this.barrier;
  }

  private push(u: JournalUsage): boolean {
    if (!this.started) return false;
    this.queued.push(encodeLine(`${this.epoch}.${(this.seq++).toString(36)}`, u));
    return true;
  }

  private readonly flushSoon = () => {
    this.flushScheduled = false;
    this.flush();
  };

  /** Writes every queued line with one write(2) (a loop only for a write the disk cuts short). */
  flush(): void {
    const lines = this.queued;
    if (lines.length === 0) return;
    this.queued = [];
    const release = this.releaseBarrier;
    this.barrier = undefined;
    this.releaseBarrier = undefined;
    try {
      this.writeLines(lines.length === 1 ? lines[0]! : lines.join(""));
    } finally {
      release?.();
    }
  }

  private writeLines(text: string): void {
    if (!this.started) return;
    // After a failed open or a write cut short: a new segment, never a line after a partial one.
    if (this.fd < 0 || this.broken) this.startSegment(this.segment + 1);
    if (this.fd < 0) return;
    const bytes = Buffer.from(text);
    let written = 0;
    try {
      while (written < bytes.length) written += writeSync(this.fd, bytes, written);
      if (this.options.fsync) fdatasyncSync(this.fd);
    } catch (err) {
      if (written > 0) this.broken = true;
      this.failed(err);
    }
    this.offset += written;
  }

  /** Failed opens and writes since start (tollgate_gateway_usage_journal_failures_total). */
  get failureCount(): number {
    return this.failures;
  }

  /** Where the next line goes: the checkpoint for everything appended so far. */
  position(): JournalPosition {
    this.flush();
    return { segment: this.segment, offset: this.offset };
  }

  /** Starts a new segment if the current one is past rotateBytes (the old one can then be deleted once committed). */
  rotateIfLarge(): void {
    this.flush();
    if (this.fd >= 0 && this.offset >= this.rotateBytes) this.startSegment(this.segment + 1);
  }

  /** A checkpoint is in SQLite: the segments wholly before it are deleted. */
  committed(checkpoint: JournalPosition): void {
    try {
      // Overwritten in place, one pwrite on a descriptor kept open: a writeFileSync (open,
      // truncate, write, close) per batch cost the request path more than the journal's own writes.
      if (this.copyFd < 0)
        this.copyFd = openSync(join(this.dir, CHECKPOINT_COPY), constants.O_WRONLY | constants.O_CREAT, 0o600);
      writeSync(this.copyFd, copyText(checkpoint), 0);
      // Most commits pass no segment boundary: no directory listing then.
      if (checkpoint.segment <= this.oldest) return;
      for (const segment of this.segments()) if (segment < checkpoint.segment) unlinkSync(this.path(segment));
      this.oldest = checkpoint.segment;
    } catch (err) {
      // Left on disk, deleted at the next commit or start: it is before the checkpoint, never replayed.
      this.options.logger.warn({ err, dir: this.dir }, "could not tidy the usage journal after a commit");
    }
  }

  close(): void {
    this.flush();
    this.started = false;
    this.closeFd();
    if (this.copyFd >= 0) {
      closeSync(this.copyFd);
      this.copyFd = -1;
    }
  }

  private closeFd(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }

  private startSegment(segment: number): void {
    this.closeFd();
    try {
      this.fd = openSync(this.path(segment), constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND, 0o600);
      this.segment = segment;
      this.offset = 0;
      this.broken = false;
    } catch (err) {
      this.failed(err);
    }
  }

  private failed(err: unknown): void {
    this.failures++;
    const now = Date.now();
    if (now - this.lastFailureLogMs < 10_000) return;
    this.lastFailureLogMs = now;
    this.options.logger.error(
      { err, dir: this.dir, failures: this.failures },
      "the usage journal cannot be written (disk full or read-only?): usage is kept in memory until its batch commits, and a kill -9 now loses it",
    );
  }
}
