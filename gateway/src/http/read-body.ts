import type { IncomingMessage } from "node:http";
import { errors } from "./errors.js";
import { closingQuote } from "./json-scan.js";

/**
 * How deep a JSON body nests arrays and objects, stopping as soon as it
 * exceeds `limit`: one pass over the characters outside strings, each string
 * skipped by a native search for its closing quote. Not a validator
 * (JSON.parse is). Bytes are read as latin1, one character each: UTF-8 never
 * puts a quote, bracket or backslash inside a multi-byte character, so the
 * count is the same on the bytes or on their decoded text.
 */
export function jsonDepthExceeds(body: Uint8Array | string, limit: number): boolean {
  const text =
    typeof body === "string" ? body : Buffer.from(body.buffer, body.byteOffset, body.length).toString("latin1");
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i = closingQuote(text, i + 1);
      if (i < 0) return false; // an unterminated string: no bracket after it counts
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > limit) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}

/**
 * How many bytes past the limit are read and dropped so a refused upload
 * still gets its 413: clients (fetch, the SDKs) only read an answer once
 * their upload is done, and a connection closed under them reads as EPIPE,
 * which they retry. Past this, the connection is closed: the client is
 * sending far more than any request the gateway would forward.
 */
export const DISCARD_BEYOND_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * Reads the request body, refusing more than `limit` bytes (413) without
 * buffering the excess: what the client still sends is read and dropped
 * (up to DISCARD_BEYOND_LIMIT_BYTES), then the 413 is answered on a
 * connection that stays open.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    let tooLarge = declared > limit;
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onError);
    };
    const refuse = (close: boolean) => {
      settled = true;
      cleanup();
      reject(errors.bodyTooLarge(limit, close));
    };
    if (declared > limit + DISCARD_BEYOND_LIMIT_BYTES) {
      refuse(true);
      return;
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (tooLarge) {
        if (size > limit + DISCARD_BEYOND_LIMIT_BYTES) refuse(true);
        return;
      }
      if (size > limit) {
        // Drop what was kept and read on to the end, then refuse.
        tooLarge = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      if (tooLarge) {
        refuse(false);
        return;
      }
      settled = true;
      // The listeners stay: the request has ended, nothing more comes, and they go with it
      // (four removeListener calls per request saved; the close and error ones see `settled`).
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = () => {
      if (settled) return;
      settled = true;
      cleanup();
      // An aborted upload or a broken chunked body: the client's doing, not a
      // gateway failure. Usually nobody is left to read this answer.
      reject(errors.incompleteBody());
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onError);
  });
}
