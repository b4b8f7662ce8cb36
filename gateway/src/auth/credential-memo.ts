import type { IncomingHttpHeaders } from "node:http";
import type { EphemeralUse } from "./authenticate.js";
import type { KeyRecord } from "./key-index.js";

/**
 * The last credential a client's connection authenticated with. A keep-alive connection sends
 * the same key on every request; the next request that presents the same credential headers
 * then skips the format check, the SHA-256 and the lookup (for an ephemeral token, its
 * signature check) and gets the same answer the full check would give:
 *
 * - the headers compared are all three a credential can come from (presentedCredential), so
 *   the same headers name the same credential from the same header;
 * - it holds for one version of the key index only: any applied change (a key revoked,
 *   deactivated, deleted or rotated, a snapshot, a signing key) makes the next request check
 *   in full, so a revocation takes effect on open connections as on new ones;
 * - it holds until the first instant a check by the clock would refuse the credential (the
 *   key's expiry, its previous secret's grace, the token's expiry), exclusive.
 *
 * Only successes are kept: every refusal runs the full check, its audit and brute-force count.
 * Only for a direct peer: one TCP connection is then one client (behind a proxy it may carry
 * many, and a cache hit must not depend on what another client sent).
 */
/**
 * A memo keeps its headers for as long as the connection lives: a key or a token is far shorter,
 * and a client padding them (up to MAX_HEADER_BYTES) gets no memo rather than pin that much.
 */
const MAX_MEMO_CHARS = 2048;

function length(v: string | string[] | undefined): number {
  return v === undefined ? 0 : typeof v === "string" ? v.length : MAX_MEMO_CHARS + 1;
}

export class CredentialMemo {
  constructor(
    private readonly authorization: string | undefined,
    private readonly xApiKey: string | string[] | undefined,
    private readonly apiKey: string | string[] | undefined,
    private readonly indexVersion: number,
    private readonly validUntilMs: number,
    readonly key: KeyRecord,
    readonly ephemeral: EphemeralUse | null,
  ) {}

  /** The memo of a success; null when its headers are longer than a memo keeps (MAX_MEMO_CHARS). */
  static of(
    headers: IncomingHttpHeaders,
    indexVersion: number,
    result: { key: KeyRecord; ephemeral: EphemeralUse | null; validUntilMs: number },
  ): CredentialMemo | null {
    if (length(headers.authorization) + length(headers["x-api-key"]) + length(headers["api-key"]) > MAX_MEMO_CHARS)
      return null;
    return new CredentialMemo(
      headers.authorization,
      headers["x-api-key"],
      headers["api-key"],
      indexVersion,
      result.validUntilMs,
      result.key,
      result.ephemeral,
    );
  }

  /** Whether a request with these headers, at this index version and time, presents this same valid credential. */
  matches(headers: IncomingHttpHeaders, indexVersion: number, nowMs: number): boolean {
    return (
      indexVersion === this.indexVersion &&
      nowMs < this.validUntilMs &&
      headers.authorization === this.authorization &&
      headers["x-api-key"] === this.xApiKey &&
      headers["api-key"] === this.apiKey
    );
  }
}
