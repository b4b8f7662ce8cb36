import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { AppContext } from "../context.js";
import type { RejectedRequestReason } from "../metrics.js";
import { rawOpenAiError } from "./respond.js";
import { errors, type HttpError } from "./errors.js";

/** Sockets already answered: Node may report one broken connection more than once. */
const answered = new WeakSet<Duplex>();

/** How long an answered socket may linger so the client reads the answer before it is cut. */
const LINGER_MS = 2_000;

/**
 * Writes an OpenAI-style error straight to a socket that has no usable
 * ServerResponse, then closes it. Lingering a little, rather than destroying
 * at once, keeps unread request bytes from turning the close into a reset
 * that could discard the answer before the client reads it.
 */
function answerRaw(socket: Duplex, err: HttpError): void {
  answered.add(socket);
  socket.end(rawOpenAiError(err));
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

function classify(
  err: NodeJS.ErrnoException,
  maxHeaderBytes: number,
  requestTimeoutMs: number,
): { reason: RejectedRequestReason; error: HttpError } {
  switch (err.code) {
    case "HPE_HEADER_OVERFLOW":
      return {
        reason: "header_too_large",
        error: errors.headersTooLarge(maxHeaderBytes),
      };
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return {
        reason: "request_timeout",
        error: errors.requestTimeout(requestTimeoutMs),
      };
    default:
      return {
        reason: "parse_error",
        // The parser's code only (e.g. HPE_INVALID_HEADER_TOKEN): never the bytes, which may hold a key.
        error: errors.malformedHttp(err.code),
      };
  }
}

/**
 * Makes the client server answer what Node would otherwise answer itself,
 * with an empty body or none at all, in OpenAI's JSON error shape: requests it
 * cannot parse (bad header bytes, a broken chunked body, headers over
 * MAX_HEADER_BYTES, too slow), CONNECT, and `Expect` values other than
 * 100-continue. Never throws: a malformed request must not reach the process.
 */
export function hardenClientServer(server: Server, ctx: AppContext): void {
  const { metrics, logger } = ctx;

  server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (answered.has(socket)) return;
    // A reset or a closed socket leaves nobody to answer.
    if (err.code === "ECONNRESET" || err.code === "EPIPE" || !socket.writable) {
      socket.destroy();
      return;
    }
    const { reason, error } = classify(err, ctx.config.maxHeaderBytes, ctx.config.requestTimeoutMs);
    metrics.rejectedRequest(reason);
    // Never err.rawPacket: it may hold a credential.
    logger.debug({ code: err.code, reason }, "refused a malformed client request");
    const inFlight = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    // Nothing under way, or the request under way is the broken one (its own
    // body): answer now. Its handler sees the connection close.
    if (!inFlight || (!inFlight.headersSent && !inFlight.req.complete)) {
      answerRaw(socket, error);
      return;
    }
    // A complete earlier request is still being answered (pipelining, or an
    // answer sent before its body was read): appending now would corrupt or
    // replace it. Let it finish, then answer if the connection still can.
    answered.add(socket);
    inFlight.once("close", () => {
      if (inFlight.writableFinished && socket.writable) answerRaw(socket, error);
      else socket.destroy();
    });
  });

  server.on("connect", (_req: IncomingMessage, socket: Duplex) => {
    socket.on("error", () => socket.destroy());
    metrics.rejectedRequest("connect_method");
    answerRaw(socket, errors.connectNotSupported());
  });

  server.on("checkExpectation", (req: IncomingMessage, res) => {
    metrics.rejectedRequest("expectation_failed");
    const body = JSON.stringify({
      error: {
        message: "Unsupported Expect header: only '100-continue' is understood.",
        type: "invalid_request_error",
        param: null,
        code: "expectation_failed",
      },
    });
    res.writeHead(417, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      connection: "close",
    });
    res.end(body);
    req.resume();
  });
}
