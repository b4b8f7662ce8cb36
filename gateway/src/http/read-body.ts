import type { IncomingMessage } from "node:http";
import { errors } from "./errors.js";

/**
 * How deep `body` nests JSON arrays and objects, stopping as soon as it
 * exceeds `limit`: one pass over the bytes, brackets inside strings skipped.
 * Not a validator (JSON.parse is); UTF-8 never puts a quote or a backslash inside a
 * multi-byte character, so a byte scan is exact.
 */
export function jsonDepthExceeds(body: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const b = body[i]!;
    if (inString) {
      if (b === 0x5c /* backslash: skip the escaped byte */) i++;
      else if (b === 0x22 /* " */) inString = false;
    } else if (b === 0x22) {
      inString = true;
    } else if (b === 0x7b /* { */ || b === 0x5b /* [ */) {
      if (++depth > limit) return true;
    } else if (b === 0x7d /* } */ || b === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}

/**
 * Reads the request body, refusing more than `limit` bytes (413) without
 * buffering the excess.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () => errors.bodyTooLarge(limit);
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (declared > limit) {
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        settled = true;
        cleanup();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      settled = true;
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = () => {
      settled = true;
      cleanup();
      // An aborted upload or a broken chunked body: the client's doing, not a
      // gateway failure. Usually nobody is left to read this answer.
      reject(errors.incompleteBody());
    };
    const onClose = () => {
      if (!settled) onError();
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}
