import type { IncomingMessage, ServerResponse } from "node:http";
import type { PolicyDenial } from "../auth/policy.js";

export type OpenAiErrorType = "invalid_request_error" | "api_error" | "rate_limit_error";

/** An HTTP error answered in OpenAI's error shape. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: OpenAiErrorType,
    readonly code: string | null,
    readonly param: string | null = null,
    /** Extra response headers, e.g. Allow or Connection. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** 403: a key scope refused the request. The client handler counts and audits it. */
export class PolicyDeniedError extends HttpError {
  constructor(
    readonly denial: PolicyDenial,
    /** The requested model, when the model was at fault. */
    readonly model: string | null = null,
  ) {
    super(403, denial.message, "invalid_request_error", denial.code, denial.param);
    this.name = "PolicyDeniedError";
  }
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** `{"error":{message,type,param,code}}`, as the OpenAI SDKs parse it. */
export function sendOpenAiError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, { error: { message: err.message, type: err.type, param: err.param, code: err.code } }, err.headers);
}

/**
 * Reads the request body, refusing more than `limit` bytes (413) without
 * buffering the excess.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () =>
    new HttpError(
      413,
      `Request body too large: the limit is ${limit} bytes (MAX_BODY_BYTES). Send a smaller request.`,
      "invalid_request_error",
      "request_too_large",
      null,
      { connection: "close" },
    );
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
    const onError = (err: Error) => {
      settled = true;
      cleanup();
      reject(err);
    };
    const onClose = () => {
      if (!settled) onError(new Error("client closed the connection before sending the whole body"));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

/** Resolves when the response can take more data, or is gone. */
export function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
