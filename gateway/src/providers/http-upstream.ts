import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";
import type { Dispatcher, Pool as UndiciPool } from "undici";
import { TOLLGATE_VERSION } from "@tollgate/shared";
import { UpstreamError, type ProviderResponse } from "./types.js";
import type { CallerSignal } from "./light-signal.js";

/**
 * undici's Pool alone. Its package index also loads fetch, WebSocket, the
 * cache, mock agents and more, whose memory the gateway would keep for
 * nothing (bench/README.md, `pnpm bench`, peak RSS). Should a release move
 * the file, the index is the fallback.
 */
function loadPool(): typeof UndiciPool {
  const require = createRequire(import.meta.url);
  try {
    return require("undici/lib/dispatcher/pool.js") as typeof UndiciPool;
  } catch {
    return (require("undici") as typeof import("undici")).Pool;
  }
}
const Pool = loadPool();

const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_CLOSED",
]);

/**
 * Upstream response headers a client may rely on: request ids, timing and
 * retry hints. An allowlist, so no credential, cookie or account identifier
 * can slip through; never `x-ratelimit-*` nor `anthropic-ratelimit-*`: they
 * describe the upstream account, and the gateway sets them itself for the
 * key's own quota.
 */
const PASSED_RESPONSE_HEADERS = new Set([
  "request-id",
  "openai-processing-ms",
  "openai-version",
  "retry-after",
  "retry-after-ms",
  "x-should-retry",
  "apim-request-id",
  "x-ms-region",
]);
/** The gateway's own request id is x-request-id; the upstream's travels under this name. */
export const UPSTREAM_REQUEST_ID_HEADER = "x-upstream-request-id";

/** The upstream response headers the client sees (see PASSED_RESPONSE_HEADERS). */
export function passedResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  // for-in, not Object.entries: no [name, value] array per header, per call.
  for (const name in headers) {
    const v = headers[name];
    if (typeof v !== "string") continue;
    const lower = name.toLowerCase();
    if (lower === "x-request-id") out[UPSTREAM_REQUEST_ID_HEADER] = v;
    else if (PASSED_RESPONSE_HEADERS.has(lower)) out[lower] = v;
  }
  return out;
}

/** Whether a call's whole-request deadline has passed (an AbortSignal qualifies). */
export interface Deadline {
  readonly aborted: boolean;
}

/** Maps a transport failure to UpstreamError; anything else is rethrown as is. */
export function classifyUpstreamFailure(err: unknown, deadline: Deadline, origin: string): unknown {
  if (err instanceof UpstreamError) return err;
  const code = (err as { code?: string } | null)?.code;
  if (deadline.aborted || code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
    return new UpstreamError("timeout", `The upstream provider at ${origin} did not answer in time.`, { cause: err });
  }
  if (code !== undefined && CONNECT_CODES.has(code)) {
    return new UpstreamError("connect", `Could not reach the upstream provider at ${origin} (${code}).`, {
      cause: err,
    });
  }
  return err;
}

/**
 * Request headers as a flat `[name, value, name, value, …]` list, names in lower case: undici
 * takes it as is, and building one per request costs an array's pushes, where an object
 * with a different set of names per request made V8 miss its inline caches on every
 * property (`pnpm bench`, perf profile in bench/results/HISTORY.md).
 */
export type HeaderList = string[];

export interface UpstreamCall {
  method: "GET" | "POST" | "DELETE";
  /** Path below the base URL's path, e.g. "/chat/completions". */
  path: string;
  /** An object, or a HeaderList (the calls made per client request). */
  headers: Record<string, string> | HeaderList;
  body?: Buffer;
  signal: CallerSignal;
}

/**
 * One keep-alive pool to an upstream origin, with a whole-request deadline
 * and transport failures mapped to UpstreamError (also while the body streams).
 */
export interface HttpUpstream {
  readonly origin: string;
  request(call: UpstreamCall): Promise<ProviderResponse>;
  close(): Promise<void>;
}

export function createHttpUpstream(baseUrl: string, timeoutMs: number): HttpUpstream {
  const base = new URL(baseUrl);
  const origin = base.origin;
  const basePath = base.pathname.replace(/\/+$/, "");
  const pool = new Pool(origin, {
    connections: null,
    keepAliveTimeout: 30_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: { timeout: 10_000 },
  });
  const userAgent = `tollgate-gateway/${TOLLGATE_VERSION}`;
  const deadlines = new DeadlineQueue(timeoutMs);
  return {
    origin,
    request(call) {
      return new Promise<ProviderResponse>((resolve, reject) => {
        const handler = new UpstreamHandler(call.signal, deadlines, origin, resolve, reject);
        // The headers are the caller's own for this call: add ours rather than copy them.
        const headers = call.headers;
        if (Array.isArray(headers)) {
          if (!listHas(headers, "user-agent")) headers.push("user-agent", userAgent);
        } else if (headers["user-agent"] === undefined) headers["user-agent"] = userAgent;
        pool.dispatch({ method: call.method, path: basePath + call.path, headers, body: call.body ?? null }, handler);
      });
    },
    // Called once the servers are closed; anything still open is abandoned.
    close: async () => {
      await pool.destroy();
    },
  };
}

/**
 * The whole-request deadlines of one upstream's calls under a single timer,
 * instead of a `setTimeout`, `unref` and `clearTimeout` per call (each of
 * them a Timeout object, and the unref'd timer's ref toggled in and out of
 * the event loop every time). Every call of an upstream has the same
 * timeout, so deadlines arrive in call order: a list in that order (a call
 * unlinks itself in O(1) when it ends) is sorted, and the one timer waits
 * for its head. A call that ends first leaves the timer armed; when it
 * fires it expires what is due and re-arms for the new head, so under steady
 * traffic it fires about once per timeout, not once per call.
 */
class DeadlineQueue {
  private head: UpstreamHandler | null = null;
  private tail: UpstreamHandler | null = null;
  private timer: NodeJS.Timeout | undefined;
  private readonly fire = () => this.expire();

  constructor(readonly timeoutMs: number) {}

  add(call: UpstreamHandler): void {
    call.deadlineAt = performance.now() + this.timeoutMs;
    call.prev = this.tail;
    call.next = null;
    if (this.tail !== null) this.tail.next = call;
    else this.head = call;
    this.tail = call;
    call.queued = true;
    if (this.timer === undefined) this.arm(this.timeoutMs);
  }

  remove(call: UpstreamHandler): void {
    if (!call.queued) return;
    call.queued = false;
    const { prev, next } = call;
    if (prev !== null) prev.next = next;
    else this.head = next;
    if (next !== null) next.prev = prev;
    else this.tail = prev;
    call.prev = call.next = null;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(this.fire, ms);
    this.timer.unref();
  }

  private expire(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.head !== null && this.head.deadlineAt <= now) {
      const call = this.head;
      this.remove(call);
      call.expire();
    }
    // The event loop's clock may run up to a millisecond behind: a head not quite due waits at least 1 ms more.
    if (this.head !== null) this.arm(Math.max(1, Math.ceil(this.head.deadlineAt - now)));
  }
}

/** Bytes queued unread before the upstream socket is paused (the client reads slower than the upstream sends). */
const HIGH_WATER_BYTES = 64 * 1024;
/** An unwanted body (see discard) is read and dropped up to this much, so its connection can serve again; past it, the connection is closed. */
const DISCARD_LIMIT_BYTES = 64 * 1024;

type Controller = Dispatcher.DispatchController;

/**
 * One upstream call on undici's dispatch API: the answer's head resolves the
 * call, its chunks go to an UpstreamBody: a Readable, an async generator and
 * their promises less per call than `request()` with a body stream
 * (bench/README.md, "Session of 2026-11-23: tokenizer, writer thread, undici dispatch").
 * The call is cut (undici's controller aborted) by the client's signal (the
 * client left) or the whole-request deadline, whichever comes first; the
 * handler is its own deadline entry, without a signal of its own between them.
 */
class UpstreamHandler implements Dispatcher.DispatchHandler, Deadline {
  /** The deadline fired. */
  aborted = false;
  /** In the upstream's DeadlineQueue, at this performance.now() instant. */
  deadlineAt = 0;
  queued = false;
  prev: UpstreamHandler | null = null;
  next: UpstreamHandler | null = null;
  private controller: Controller | null = null;
  private body: UpstreamBody | null = null;
  /** The call was cut, for this reason (the client's signal's, or the deadline's TimeoutError). */
  private cut = false;
  private cutReason: unknown = undefined;
  private readonly onClientAbort: () => void;

  constructor(
    private readonly client: CallerSignal,
    private readonly deadlines: DeadlineQueue,
    private readonly origin: string,
    private readonly resolve: (res: ProviderResponse) => void,
    private readonly reject: (err: unknown) => void,
  ) {
    this.onClientAbort = () => this.cutCall(client.reason);
    if (client.aborted) {
      this.cutCall(client.reason);
      return;
    }
    client.addEventListener("abort", this.onClientAbort, { once: true });
    deadlines.add(this);
  }

  private cutCall(reason: unknown): void {
    if (this.cut) return;
    this.cut = true;
    this.cutReason = reason;
    this.controller?.abort(reason instanceof Error ? reason : new Error("aborted"));
  }

  /** The deadline passed (DeadlineQueue, which has already unlinked this call). */
  expire(): void {
    this.aborted = true;
    this.cutCall(new DOMException("The upstream call timed out.", "TimeoutError"));
  }

  /** The call is over (answered in full, failed, not read to its end or discarded): no more deadline, no more listener. */
  done(): void {
    this.deadlines.remove(this);
    this.client.removeEventListener("abort", this.onClientAbort);
  }

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.cut) {
      const reason = this.cutReason;
      controller.abort(reason instanceof Error ? reason : new Error("aborted"));
    }
  }

  onResponseStart(
    controller: Controller,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    // An informational answer (103 Early Hints, from a CDN in front of the upstream) is not the
    // answer: undici reports it, then the final one. Only the final one is passed on.
    if (statusCode < 200) return;
    const ct = headers["content-type"];
    const body = new UpstreamBody(controller, this);
    this.body = body;
    this.resolve(new UpstreamAnswer(statusCode, Array.isArray(ct) ? ct[0] : ct, passedResponseHeaders(headers), body));
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    this.body?.push(chunk);
  }

  onResponseEnd(): void {
    this.done();
    this.body?.end();
  }

  onResponseError(_controller: Controller | undefined, err: Error): void {
    this.done();
    const mapped = classifyUpstreamFailure(err, this, this.origin);
    if (this.body) this.body.fail(mapped);
    else this.reject(mapped);
  }
}

/** An upstream answer as the route sees it: its methods on the prototype, not two closures per answer. */
class UpstreamAnswer implements ProviderResponse {
  constructor(
    readonly status: number,
    readonly contentType: string | undefined,
    readonly headers: Record<string, string>,
    readonly body: UpstreamBody,
  ) {}

  discard(): void {
    this.body.discard();
  }

  takeComplete(): Buffer | null {
    return this.body.takeComplete();
  }
}

/**
 * An upstream body as the route reads it (`for await`): chunks queue here
 * until read, and the upstream socket pauses while more than
 * HIGH_WATER_BYTES wait. Leaving the loop early aborts the call.
 */
class UpstreamBody implements AsyncIterableIterator<Uint8Array> {
  private readonly chunks: Buffer[] = [];
  private head = 0;
  private queuedBytes = 0;
  private ended = false;
  private error: unknown = null;
  private discarding = false;
  private discardedBytes = 0;
  private waiter: { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (err: unknown) => void } | null = null;

  constructor(
    private readonly controller: Controller,
    private readonly state: UpstreamHandler,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  push(chunk: Buffer): void {
    if (this.discarding) {
      this.discardedBytes += chunk.length;
      if (this.discardedBytes > DISCARD_LIMIT_BYTES) this.controller.abort(new Error("discarded"));
      return;
    }
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      waiter.resolve({ value: chunk, done: false });
      return;
    }
    this.chunks.push(chunk);
    this.queuedBytes += chunk.length;
    if (this.queuedBytes > HIGH_WATER_BYTES && !this.controller.paused) this.controller.pause();
  }

  end(): void {
    this.ended = true;
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      waiter.resolve({ value: undefined, done: true });
    }
  }

  fail(err: unknown): void {
    if (this.discarding) return;
    this.error = err;
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      waiter.reject(err);
    }
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    if (this.head < this.chunks.length) {
      const chunk = this.chunks[this.head]!;
      this.chunks[this.head++] = undefined as unknown as Buffer;
      if (this.head === this.chunks.length) {
        this.chunks.length = 0;
        this.head = 0;
      }
      this.queuedBytes -= chunk.length;
      if (this.controller.paused && this.queuedBytes <= HIGH_WATER_BYTES / 2) this.controller.resume();
      return Promise.resolve({ value: chunk, done: false });
    }
    if (this.error !== null) return Promise.reject(this.error);
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    if (this.controller.paused) this.controller.resume();
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Every chunk at once when the body has ended without error and none was read yet (ProviderResponse.takeComplete); else null. */
  takeComplete(): Buffer | null {
    if (!this.ended || this.error !== null || this.discarding || this.head !== 0) return null;
    const chunks = this.chunks;
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    chunks.length = 0;
    this.queuedBytes = 0;
    return body;
  }

  /** The reader left the loop early (`break`, or a throw): the rest is not wanted. */
  return(): Promise<IteratorResult<Uint8Array>> {
    if (!this.ended && this.error === null) this.controller.abort(new Error("the body was not read to its end"));
    this.state.done();
    this.chunks.length = 0;
    this.head = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Nobody will read this body (a fallback replaces it): drop it, reading a little so its connection can serve again. */
  discard(): void {
    this.state.done();
    this.discarding = true;
    for (let i = this.head; i < this.chunks.length; i++) this.discardedBytes += this.chunks[i]!.length;
    this.chunks.length = 0;
    this.head = 0;
    this.queuedBytes = 0;
    if (this.discardedBytes > DISCARD_LIMIT_BYTES) this.controller.abort(new Error("discarded"));
    else if (this.controller.paused) this.controller.resume();
  }
}

/** Whether a HeaderList names `name` (lower case). */
function listHas(list: HeaderList, name: string): boolean {
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) return true;
  return false;
}

/** Header names that could carry a credential: never forwarded, whatever their prefix. */
const CREDENTIAL_LIKE = /auth|key|token|secret|cookie|session|password/i;

/**
 * What an upstream would see from the client directly, credentials aside:
 * its user-agent and the SDKs' x-stainless-* telemetry (language, runtime,
 * retry count, timeout). Appended to `into`, which the caller owns.
 */
export function clientIdentityList(from: Record<string, string | string[] | undefined>, into: HeaderList): HeaderList {
  for (const name in from) {
    const v = from[name];
    if (typeof v !== "string") continue;
    if (name === "user-agent" || (name.startsWith("x-stainless-") && !CREDENTIAL_LIKE.test(name))) into.push(name, v);
  }
  return into;
}

/** A client header's value when it is a plain string. */
export function headerString(v: string | string[] | undefined): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}
