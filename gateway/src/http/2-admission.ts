import type { IncomingMessage, ServerResponse } from "node:http";
import type { BlockList, Socket } from "node:net";
import {
  authenticateCredential,
  presentedCredential,
  type AuthFailureReason,
  type EphemeralUse,
  type PresentedCredential,
} from "../auth/authenticate.js";
import { CredentialMemo } from "../auth/credential-memo.js";
import { clientAddress, ipInList, normalizeAddress, unparseableForwardedBucket } from "@tollgate/shared";
import type { KeyRecord } from "../auth/key-index.js";
import { checkIp, type PolicyDenial } from "../auth/policy.js";
import { MAX_URL_BYTES } from "../config.js";
import type { AppContext } from "../context.js";
import { errors, type PolicyDeniedError } from "./errors.js";
import { DenialAggregator } from "./denial-aggregator.js";
import type { RequestRecord } from "./6-request-record.js";
import { sendError, sendOpenAiError } from "./respond.js";
import type { Route } from "./route.js";

// The admission checks of a request, in the order the route table runs them.
// Each answers the request itself when it refuses (and says so by its result),
// so the pipeline is a plain sequence of calls.

/**
 * What the gateway knows of a connection's peer, parsed once per socket (a
 * keep-alive connection never changes peer): its normalized address, whether
 * it is a trusted proxy, and the last IP allowlist it was checked against.
 */
interface Peer {
  address: string;
  trusted: boolean;
  allowlist: BlockList | null;
  allowed: boolean;
  /** The credential this connection last authenticated with (a direct peer only). */
  credential: CredentialMemo | null;
}

/** What the checks keep across requests, built once per client server. */
export interface Admission {
  ctx: AppContext;
  peers: WeakMap<Socket, Peer>;
  /** Unauthenticated denials: rows for the first per address and minute, a summary row for the rest. */
  denials: DenialAggregator;
}

export function createAdmission(ctx: AppContext): Admission {
  const denials = new DenialAggregator({
    now: () => ctx.clock.now(),
    write: (summaries) => {
      for (const s of summaries) {
        ctx.logWriter.audit({
          at: new Date(ctx.clock.now()).toISOString(),
          event: "auth_denied_summary",
          keyId: null,
          revision: null,
          detail: { ip: s.ip, window_start: s.windowStart, denials: s.suppressed, reasons: s.reasons },
        });
      }
    },
  });
  return { ctx, peers: new WeakMap(), denials };
}

/**
 * Failures that look like guessing a credential. A missing key is no guess, and a
 * real key that is inactive, expired or revoked is not either.
 */
const GUESSES = new Set<AuthFailureReason>([
  "malformed",
  "bad_checksum",
  "unknown",
  // "rotated" is not one: it is a real key's former secret, presented by a client not yet updated.
  "ephemeral_malformed",
  "ephemeral_bad_signature",
  "ephemeral_unknown_signing_key",
  "ephemeral_wrong_org",
]);

function peerOf(a: Admission, req: IncomingMessage): Peer | undefined {
  const socket = req.socket;
  let peer = a.peers.get(socket);
  if (peer === undefined) {
    const raw = socket.remoteAddress;
    if (raw === undefined) return undefined; // gone already: nothing to cache
    const address = normalizeAddress(raw);
    const trustedProxies = a.ctx.trustedProxies;
    peer = {
      address,
      trusted: trustedProxies !== null && ipInList(trustedProxies, address),
      allowlist: null,
      allowed: false,
      credential: null,
    };
    a.peers.set(socket, peer);
  }
  return peer;
}

/** The client's address: the peer's, or from X-Forwarded-For when the peer is a trusted proxy (see clientAddress). */
function clientIp(a: Admission, req: IncomingMessage): string | null {
  const peer = peerOf(a, req);
  if (peer === undefined) return null;
  if (!peer.trusted) return peer.address;
  return clientAddress(req.socket.remoteAddress, req.headers["x-forwarded-for"], a.ctx.trustedProxies);
}

/** The key's IP scope; the verdict for a direct peer is kept per socket and allowlist (a new key revision compiles a new one). */
function ipDenial(a: Admission, req: IncomingMessage, key: KeyRecord): PolicyDenial | null {
  const peer = peerOf(a, req);
  if (peer === undefined || peer.trusted) return checkIp(key, clientIp(a, req));
  if (peer.allowlist !== key.ipAllowlist) {
    peer.allowed = checkIp(key, peer.address) === null;
    peer.allowlist = key.ipAllowlist;
  }
  return peer.allowed ? null : checkIp(key, peer.address);
}

/** Node counts the request line in MAX_HEADER_BYTES; this bounds the URL alone. */
export function urlWithinLimit(
  a: Admission,
  req: IncomingMessage,
  res: ServerResponse,
  rec: RequestRecord,
  served: string,
): boolean {
  if (req.url === undefined || req.url.length <= MAX_URL_BYTES) return true;
  rec.error = "url_too_long";
  a.ctx.metrics.rejectedRequest("url_too_long");
  sendOpenAiError(res, errors.urlTooLong(MAX_URL_BYTES, served));
  return false;
}

/** HTTP/1.1 requires Host (RFC 9112 3.2); Node's own check would answer without a JSON body. */
export function hostPresent(a: Admission, req: IncomingMessage, res: ServerResponse, rec: RequestRecord): boolean {
  if (req.headers.host !== undefined || req.httpVersionMajor !== 1 || req.httpVersionMinor !== 1) return true;
  rec.error = "missing_host";
  a.ctx.metrics.rejectedRequest("missing_host");
  sendOpenAiError(res, errors.missingHost());
  return false;
}

/** No snapshot yet: every key would look unknown. Say so rather than 401. */
export function keysReady(a: Admission, res: ServerResponse, rec: RequestRecord, route: Route): boolean {
  if (a.ctx.syncState.ready) return true;
  rec.error = "gateway_not_ready";
  sendError(res, errors.gatewayNotReady(), route.format);
  return false;
}

/**
 * MAX_STALENESS: keys not confirmed by the control plane for too long are
 * not trusted (a revocation may be missing); fail closed before auth.
 */
export function keysFresh(a: Admission, res: ServerResponse, rec: RequestRecord, route: Route): boolean {
  const { syncState } = a.ctx;
  const staleMs = syncState.staleForMs();
  if (staleMs === null) return true;
  rec.error = "gateway_stale";
  sendError(res, errors.gatewayStale(staleMs, syncState.maxStalenessMs ?? 0), route.format);
  return false;
}

/** Brute force: an address that sent too many invalid keys waits out its block. The client's address, or null when refused. */
export function clientNotBlocked(
  a: Admission,
  req: IncomingMessage,
  res: ServerResponse,
  rec: RequestRecord,
  route: Route,
): string | null {
  const client =
    clientIp(a, req) ?? unparseableForwardedBucket(req.socket.remoteAddress, req.headers["x-forwarded-for"]);
  const retryAfter = a.ctx.bruteForce.retryAfterSeconds(client);
  if (retryAfter <= 0) return client;
  rec.error = "client_blocked";
  a.ctx.metrics.authFailure("blocked");
  if (!a.denials.admit(client, rec.error)) rec.skipLog = true;
  sendError(res, errors.clientBlocked(client, retryAfter), route.format);
  return null;
}

/** The presented key or token against the in-memory index: its key, or null when refused (401, audited). */
export function authenticateRequest(
  a: Admission,
  req: IncomingMessage,
  res: ServerResponse,
  rec: RequestRecord,
  route: Route,
  client: string,
): KeyRecord | null {
  const { ctx } = a;
  const { headers } = req;
  const now = ctx.clock.now();
  const version = ctx.keyIndex.version;
  const peer = peerOf(a, req);
  const memo = peer === undefined || peer.trusted ? null : peer.credential;
  if (memo !== null && memo.matches(headers, version, now)) return authenticated(rec, memo.key, memo.ephemeral);
  const credential = presentedCredential(headers);
  const auth = authenticateCredential(credential, ctx.keyIndex, now);
  if (auth.ok) {
    if (peer !== undefined && !peer.trusted) peer.credential = CredentialMemo.of(headers, version, auth);
    return authenticated(rec, auth.key, auth.ephemeral);
  }
  if (
    GUESSES.has(auth.reason) &&
    ctx.unsyncedKeys.countsAsGuess(auth.reason, client, credential.token) &&
    ctx.bruteForce.recordFailure(client)
  ) {
    blockClient(a, client);
  }
  rec.keyId = auth.keyId;
  rec.metadata = auth.key?.metadataJson ?? null;
  rec.ephemeral = auth.reason.startsWith("ephemeral_");
  rec.error = `auth_${auth.reason}`;
  ctx.metrics.authFailure(auth.reason);
  // Anonymous denials (no key recognised) are the ones a flood is made of: sampled per address and minute.
  // Those naming a real key or token keep a row each: the key's owner may need them.
  const anonymous = rec.keyId === null && !rec.ephemeral;
  if (!anonymous || a.denials.admit(client, rec.error)) auditAuthDenied(a, req, rec, route, auth.reason, credential);
  else rec.skipLog = true;
  sendError(res, errors.invalidApiKey(auth.message), route.format);
  return null;
}

/** The request's record names the key (and the ephemeral token) it authenticated as. */
function authenticated(rec: RequestRecord, key: KeyRecord, ephemeral: EphemeralUse | null): KeyRecord {
  rec.keyId = key.id;
  rec.metadata = key.metadataJson;
  if (ephemeral !== null) {
    rec.ephemeral = true;
    rec.ephemeralTokenId = ephemeral.tokenId;
  }
  return key;
}

/** Never the presented key or token, nor any part of it: only what we already knew. */
function auditAuthDenied(
  a: Admission,
  req: IncomingMessage,
  rec: RequestRecord,
  route: Route,
  reason: AuthFailureReason,
  credential: PresentedCredential,
): void {
  a.ctx.logWriter.audit({
    at: new Date(a.ctx.clock.now()).toISOString(),
    event: "auth_denied",
    keyId: rec.keyId,
    revision: null,
    detail: {
      reason,
      key_id: rec.keyId,
      ephemeral: rec.ephemeral,
      ip: clientIp(a, req),
      route: route.label,
      // Which header was read (never its value), and which were ignored.
      credential_header: credential.header,
      ...(credential.ignored.length > 0 ? { ignored_headers: credential.ignored } : {}),
    },
  });
}

/** The guess that crossed the threshold: the address is blocked from now on; say so in metrics, log and audit. */
function blockClient(a: Admission, client: string): void {
  const { ctx } = a;
  ctx.metrics.setBlockedClients(ctx.bruteForce.blockedCount());
  ctx.logger.warn({ client, ttlMs: ctx.config.bruteForce.ttlMs }, "client blocked after repeated invalid API keys");
  ctx.logWriter.audit({
    at: new Date(ctx.clock.now()).toISOString(),
    event: "client_blocked",
    keyId: null,
    revision: null,
    detail: {
      ip: client,
      failed_attempts: ctx.config.bruteForce.maxFailedAttempts,
      blocked_seconds: Math.round(ctx.config.bruteForce.ttlMs / 1000),
    },
  });
}

/** The scope that does not depend on the body; model and provider (routed by model) are checked by the upstream route. */
export function ipAllowed(
  a: Admission,
  req: IncomingMessage,
  res: ServerResponse,
  rec: RequestRecord,
  route: Route,
  key: KeyRecord,
): boolean {
  const denial = key.ipAllowlist === null ? null : ipDenial(a, req, key);
  if (denial === null) return true;
  denyByPolicy(a, req, res, rec, errors.policyDenied(denial), route);
  return false;
}

/** A scope refused the request (here, or in a route): count, audit (never the key), answer 403. */
export function denyByPolicy(
  a: Admission,
  req: IncomingMessage,
  res: ServerResponse,
  rec: RequestRecord,
  err: PolicyDeniedError,
  route: Route,
): void {
  const { rule, code } = err.denial;
  rec.error = code;
  a.ctx.metrics.policyDenied(rule);
  a.ctx.logWriter.audit({
    at: new Date(a.ctx.clock.now()).toISOString(),
    event: "policy_denied",
    keyId: rec.keyId,
    revision: null,
    detail: {
      rule,
      code,
      key_id: rec.keyId,
      ephemeral: rec.ephemeral,
      ...(err.model !== null ? { model: err.model } : {}),
      ip: clientIp(a, req),
      route: route.label,
    },
  });
  if (!res.headersSent) sendError(res, err, route.format);
}
