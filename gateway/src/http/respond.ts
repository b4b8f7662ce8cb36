import { STATUS_CODES, type ServerResponse } from "node:http";
import type { HttpError } from "./errors.js";

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** The JSON text of sendOpenAiError's body. */
function openAiErrorBody(err: HttpError): string {
  return JSON.stringify({ error: { message: err.message, type: err.type, param: err.param, code: err.code } });
}

/** Which API's error shape a route answers in. */
export type ErrorFormat = "openai" | "anthropic";

/** Anthropic's error `type` for a status, as its SDKs and docs name them. */
function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 408:
    case 504:
      return "timeout_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 529:
      return "overloaded_error";
    default:
      return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

/** `{"type":"error","error":{"type","message"},"request_id"}`, as the Anthropic SDKs parse it. */
function anthropicErrorBody(err: HttpError, requestId: string | undefined): string {
  return JSON.stringify({
    type: "error",
    error: { type: anthropicErrorType(err.status), message: err.message },
    ...(requestId !== undefined ? { request_id: requestId } : {}),
  });
}

/** Answers `err` in the route's API shape. */
export function sendError(res: ServerResponse, err: HttpError, format: ErrorFormat): void {
  if (format === "openai") {
    sendOpenAiError(res, err);
    return;
  }
  // The gateway's request id, under the names Anthropic's API uses for its own.
  const id = res.getHeader("x-request-id");
  const requestId = typeof id === "string" ? id : undefined;
  const body = anthropicErrorBody(err, requestId);
  res.writeHead(err.status, {
    ...err.headers,
    ...(requestId !== undefined ? { "request-id": requestId } : {}),
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** `{"error":{message,type,param,code}}`, as the OpenAI SDKs parse it. */
export function sendOpenAiError(res: ServerResponse, err: HttpError): void {
  const body = openAiErrorBody(err);
  res.writeHead(err.status, {
    ...err.headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/**
 * The same error as raw HTTP/1.1 bytes, for a socket that has no
 * ServerResponse (a request Node could not parse, CONNECT). Always closes.
 */
export function rawOpenAiError(err: HttpError): string {
  const body = openAiErrorBody(err);
  const extra = Object.entries(err.headers)
    .filter(([name]) => name.toLowerCase() !== "connection")
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  return (
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? "Error"}\r\n` +
    `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`
  );
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
