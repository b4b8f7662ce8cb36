import type { IncomingMessage, ServerResponse } from "node:http";
import type { BlockList, Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { newId } from "@tollgate/shared";
import type { AppContext } from "../context.js";
import {
  DEV_NO_AUTH_KEY,
  DEV_NO_AUTH_KEY_ID,
  PUBLIC_PATH_KEY,
  authenticateCredential,
  presentedCredential,
  type AuthFailureReason,
} from "../auth/authenticate.js";
import type { KeyRecord } from "../auth/key-index.js";
import { MAX_URL_BYTES, parseAuthBypassPaths } from "../config.js";
import { clientAddress, ipInList, normalizeAddress } from "../auth/ip.js";
import { checkIp } from "../auth/policy.js";
import type { RouteLabel } from "../metrics.js";
import { sendError, sendOpenAiError, type ErrorFormat } from "./http.js";
import { HttpError, PolicyDeniedError, errors } from "../http/errors.js";
import { formatDuration } from "../background/sync-state.js";
import { listModels } from "./models.js";
import type { RequestRecord, RouteHandler } from "./request-record.js";
import { upstreamRoute } from "./upstream-route.js";

export { createStatusHandler } from "./status.js";

interface Route {
  label: RouteLabel;
  methods: Record<string, RouteHandler>;
  /** The API whose error shape this route answers in, whatever the failure. */
  format: ErrorFormat;
}

const ROUTES = new Map<string, Route>([
  ["/v1/chat/completions", { label: "chat_completions", methods: { POST: upstreamRoute("chat_completions") }, format: "openai" }],
  ["/v1/completions", { label: "completions", methods: { POST: upstreamRoute("completions") }, format: "openai" }],
  ["/v1/embeddings", { label: "embeddings", methods: { POST: upstreamRoute("embeddings") }, format: "openai" }],
  ["/v1/responses", { label: "responses", methods: { POST: upstreamRoute("responses") }, format: "openai" }],
  ["/v1/messages", { label: "messages", methods: { POST: upstreamRoute("messages") }, format: "anthropic" }],
  ["/v1/messages/count_tokens", { label: "count_tokens", methods: { POST: upstreamRoute("count_tokens") }, format: "anthropic" }],
  ["/v1/models", { label: "models", methods: { GET: listModels }, format: "openai" }],
]);

const SERVED = "This gateway serves POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses, /v1/messages, /v1/messages/count_tokens and GET /v1/models.";

function pathOf(url: string | undefined): string {
  if (!url) return "/";
  const q = url.indexOf("?");
  const path = q === -1 ? url : url.slice(0, q);
  // Tolerate a trailing slash, as clients sometimes build URLs by concatenation.
  return path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
}

let isoSecond = Number.NaN;
let isoPrefix = "";
/** `new Date(ms).toISOString()`, formatting the date and time once per second: every request's log row needs one. */
function isoTime(ms: number): string {
  const t = Math.floor(ms);
  const second = Math.floor(t / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, -4); // up to and with the "."
  }
  const milli = t - second * 1000;
  return `${isoPrefix}${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z`;
}

/**
 * Failures that look like guessing a credential. A missing key is no guess, and a
 * real key that is inactive, expired or revoked is not either.
 */
const GUESSES = new Set<AuthFailureReason>([
  "malformed",
  "bad_checksum",
  "unknown",
  "rotated",
  "ephemeral_malformed",
  "ephemeral_bad_signature",
  "ephemeral_unknown_signing_key",
  "ephemeral_wrong_org",
]);

/**
 * The client API: route, authenticate against memory, run the handler, and
 * record the request once the response is done.
 */
export function createClientHandler(ctx: AppContext): (req: IncomingMessage, res: ServerResponse) => void {
  const { metrics, logWriter, logger, clock, keyIndex, syncState, trustedProxies } = ctx;
  const bypassPaths = new Set(parseAuthBypassPaths(ctx.config.authBypassPaths.join(",")));
  const authDisabled = ctx.config.disableAuth;

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
  }
  const peers = new WeakMap<Socket, Peer>();
  const peerOf = (req: IncomingMessage): Peer | undefined => {
    const socket = req.socket;
    let peer = peers.get(socket);
    if (peer === undefined) {
      const raw = socket.remoteAddress;
      if (raw === undefined) return undefined; // gone already: nothing to cache
      const address = normalizeAddress(raw);
      peer = { address, trusted: trustedProxies !== null && ipInList(trustedProxies, address), allowlist: null, allowed: false };
      peers.set(socket, peer);
    }
    return peer;
  };

  /** The client's address: the peer's, or from X-Forwarded-For when the peer is a trusted proxy (see clientAddress). */
  const clientIp = (req: IncomingMessage): string | null => {
    const peer = peerOf(req);
    if (peer === undefined) return null;
    if (!peer.trusted) return peer.address;
    return clientAddress(req.socket.remoteAddress, req.headers["x-forwarded-for"], trustedProxies);
  };

  /** The key's IP scope; the verdict for a direct peer is kept per socket and allowlist (a new key revision compiles a new one). */
  const ipDenial = (req: IncomingMessage, key: KeyRecord) => {
    const peer = peerOf(req);
    if (peer === undefined || peer.trusted) return checkIp(key, clientIp(req));
    if (peer.allowlist !== key.ipAllowlist) {
      peer.allowed = checkIp(key, peer.address) === null;
      peer.allowlist = key.ipAllowlist;
    }
    return peer.allowed ? null : checkIp(key, peer.address);
  };

  /** A scope refused the request: count, audit (never the key), answer 403. */
  function denyByPolicy(req: IncomingMessage, res: ServerResponse, rec: RequestRecord, err: PolicyDeniedError, { label: route, format }: Route): void {
    const { rule, code } = err.denial;
    rec.error = code;
    metrics.policyDenied(rule);
    logWriter.audit({
      at: new Date(clock.now()).toISOString(),
      event: "policy_denied",
      keyId: rec.keyId,
      revision: null,
      detail: {
        rule,
        code,
        key_id: rec.keyId,
        ephemeral: rec.ephemeral,
        ...(err.model !== null ? { model: err.model } : {}),
        ip: clientIp(req),
        route,
      },
    });
    if (!res.headersSent) sendError(res, err, format);
  }

  function finish(rec: RequestRecord, res: ServerResponse): void {
    const latencyMs = performance.now() - rec.startedAt;
    // 499 (nginx's "client closed request"): the client left before any answer.
    const status = res.headersSent ? res.statusCode : 499;
    metrics.request(rec.route, status, latencyMs / 1000);
    logWriter.request({
      at: isoTime(clock.now()),
      requestId: rec.requestId,
      keyId: rec.keyId,
      model: rec.model,
      provider: rec.provider,
      status,
      promptTokens: rec.usage?.promptTokens ?? null,
      completionTokens: rec.usage?.completionTokens ?? null,
      totalTokens: rec.usage?.totalTokens ?? null,
      cacheReadTokens: rec.usage?.cacheReadTokens ?? null,
      cacheWriteTokens: rec.usage?.cacheWriteTokens ?? null,
      attempts: rec.attempts,
      latencyMs: Math.round(latencyMs * 1000) / 1000,
      stream: rec.stream,
      // Every refusal names its cause; one answered outside the handler (a broken body) at least its status.
      // A response cut before its end without a recorded cause: the client left (mid-stream).
      error: rec.error ?? (status === 499 || !res.writableFinished ? "client_closed" : status >= 400 ? `http_${status}` : null),
      metadata: rec.metadata,
      ephemeral: rec.ephemeral,
      ephemeralTokenId: rec.ephemeralTokenId,
      // Settled by the upstream route (null when no usage or no price).
      costUsd: rec.costMicroUsd == null ? null : rec.costMicroUsd / 1e6,
    });
  }

  /** Runs an authenticated (or deliberately unauthenticated) handler; every failure answers in the route's API shape. */
  function run(req: IncomingMessage, res: ServerResponse, rec: RequestRecord, handler: RouteHandler, key: KeyRecord, route: Route): void {
    handler(ctx, req, res, rec, key).catch((err: unknown) => {
      if (err instanceof PolicyDeniedError) {
        denyByPolicy(req, res, rec, err, route);
        return;
      }
      if (err instanceof HttpError) {
        if (!rec.error) rec.error = err.code ?? `http_${err.status}`;
        if (!res.headersSent) sendError(res, err, route.format);
        else res.destroy();
        return;
      }
      rec.error = "internal_error";
      logger.error({ err, requestId: rec.requestId, keyId: rec.keyId, keyPrefix: key.prefix }, "request failed");
      if (!res.headersSent) {
        sendError(res, errors.internalError(rec.requestId), route.format);
      } else {
        res.destroy();
      }
    });
  }

  return (req, res) => {
    const rec: RequestRecord = {
      requestId: newId("req"),
      route: "not_found",
      startedAt: performance.now(),
      keyId: null,
      model: null,
      provider: null,
      stream: false,
      usage: null,
      attempts: null,
      error: null,
      metadata: null,
      ephemeral: false,
      ephemeralTokenId: null,
    };
    res.setHeader("x-request-id", rec.requestId);
    res.once("close", () => finish(rec, res));

    // Node counts the request line in MAX_HEADER_BYTES; this bounds the URL alone.
    if (req.url !== undefined && req.url.length > MAX_URL_BYTES) {
      rec.error = "url_too_long";
      metrics.rejectedRequest("url_too_long");
      sendOpenAiError(res, errors.urlTooLong(MAX_URL_BYTES, SERVED));
      return;
    }
    // HTTP/1.1 requires Host (RFC 9112 3.2); Node's own check would answer without a JSON body.
    if (req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 1) {
      rec.error = "missing_host";
      metrics.rejectedRequest("missing_host");
      sendOpenAiError(res, errors.missingHost());
      return;
    }

    const path = pathOf(req.url);
    const route = ROUTES.get(path);
    if (!route) {
      rec.error = "not_found";
      sendOpenAiError(res, errors.unknownUrl(req.method, path, SERVED));
      return;
    }
    rec.route = route.label;
    const method = req.method ?? "GET";
    const handler = route.methods[method];
    if (!handler) {
      const allowed = Object.keys(route.methods).join(", ");
      rec.error = "method_not_allowed";
      sendError(res, errors.methodNotAllowed(method, path, allowed), route.format);
      return;
    }

    // No key checked at all: a public path, or DISABLE_AUTH. The key state
    // does not matter then, so neither readiness nor staleness does.
    if (authDisabled || bypassPaths.has(path)) {
      rec.keyId = authDisabled ? DEV_NO_AUTH_KEY_ID : null;
      run(req, res, rec, handler, authDisabled ? DEV_NO_AUTH_KEY : PUBLIC_PATH_KEY, route);
      return;
    }

    // No snapshot yet: every key would look unknown. Say so rather than 401.
    if (!syncState.ready) {
      rec.error = "gateway_not_ready";
      sendError(res, errors.gatewayNotReady(), route.format);
      return;
    }
    // MAX_STALENESS: keys not confirmed by the control plane for too long are
    // not trusted (a revocation may be missing); fail closed before auth.
    const staleMs = syncState.staleForMs();
    if (staleMs !== null) {
      rec.error = "gateway_stale";
      sendError(res, errors.gatewayStale(staleMs, syncState.maxStalenessMs ?? 0), route.format);
      return;
    }
    // Brute force: an address that sent too many invalid keys waits out its block.
    const client = clientIp(req) ?? "unknown";
    const retryAfter = ctx.bruteForce.retryAfterSeconds(client);
    if (retryAfter > 0) {
      rec.error = "client_blocked";
      metrics.authFailure("blocked");
      sendError(res, errors.clientBlocked(client, retryAfter), route.format);
      return;
    }
    const credential = presentedCredential(req.headers);
    const auth = authenticateCredential(credential, keyIndex, clock.now());
    if (!auth.ok) {
      if (GUESSES.has(auth.reason) && ctx.bruteForce.recordFailure(client)) {
        metrics.setBlockedClients(ctx.bruteForce.blockedCount());
        logger.warn({ client, ttlMs: ctx.config.bruteForce.ttlMs }, "client blocked after repeated invalid API keys");
        logWriter.audit({
          at: new Date(clock.now()).toISOString(),
          event: "client_blocked",
          keyId: null,
          revision: null,
          detail: { ip: client, failed_attempts: ctx.config.bruteForce.maxFailedAttempts, blocked_seconds: Math.round(ctx.config.bruteForce.ttlMs / 1000) },
        });
      }
      rec.keyId = auth.keyId;
      rec.metadata = auth.key?.metadataJson ?? null;
      rec.ephemeral = auth.reason.startsWith("ephemeral_");
      rec.error = `auth_${auth.reason}`;
      metrics.authFailure(auth.reason);
      // Never the presented key or token, nor any part of it: only what we already knew.
      logWriter.audit({
        at: new Date(clock.now()).toISOString(),
        event: "auth_denied",
        keyId: auth.keyId,
        revision: null,
        detail: {
          reason: auth.reason,
          key_id: auth.keyId,
          ephemeral: rec.ephemeral,
          ip: clientIp(req),
          route: route.label,
          // Which header was read (never its value), and which were ignored.
          credential_header: credential.header,
          ...(credential.ignored.length > 0 ? { ignored_headers: credential.ignored } : {}),
        },
      });
      sendError(res, errors.invalidApiKey(auth.message), route.format);
      return;
    }
    const key = auth.key;
    rec.keyId = key.id;
    rec.metadata = key.metadataJson;
    if (auth.ephemeral) {
      rec.ephemeral = true;
      rec.ephemeralTokenId = auth.ephemeral.tokenId;
    }
    // The scope that does not depend on the body; model and provider (routed by model) are checked by the route.
    const denial = key.ipAllowlist === null ? null : ipDenial(req, key);
    if (denial) {
      denyByPolicy(req, res, rec, errors.policyDenied(denial), route);
      return;
    }
    run(req, res, rec, handler, key, route);
  };
}
