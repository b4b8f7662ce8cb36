import { AppError } from "@tollgate/shared";
import type { Context } from "koa";
import { z } from "zod";
import { checkJsonInput } from "./input-guard.js";

/**
 * Reads a JSON object body. Wrong content type, oversize, malformed JSON and
 * non-object bodies each get their own 4xx naming the problem.
 */
export async function readJsonObject(ctx: Context, maxBytes: number): Promise<Record<string, unknown>> {
  const type = ctx.get("content-type");
  const length = Number(ctx.get("content-length") || 0);
  if (length > maxBytes) throw new AppError("payload_too_large", `request body is larger than ${maxBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new AppError("payload_too_large", `request body is larger than ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") throw new AppError("invalid_request", "request body is empty: send a JSON object");
  if (type && !/^application\/([\w.+-]*\+)?json\b/i.test(type)) {
    throw new AppError("unsupported_media_type", `content-type must be application/json, got ${JSON.stringify(type)}`);
  }
  if (nestingDepth(text) > MAX_JSON_DEPTH) {
    throw new AppError("invalid_request", `request body nests JSON deeper than ${MAX_JSON_DEPTH} levels`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new AppError("invalid_json", `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new AppError("invalid_request", "request body must be a JSON object");
  }
  checkJsonInput(value);
  return value as Record<string, unknown>;
}

export const MAX_JSON_DEPTH = 32;

/** Deepest bracket nesting outside strings: refuses pathological bodies before parsing them. */
export function nestingDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \\ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91 /* { [ */) {
      if (++depth > max) max = depth;
    } else if (c === 125 || c === 93 /* } ] */) depth--;
  }
  return max;
}

/** Validates with zod; the first problem becomes a 400 naming its field. */
export function validate<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  if (issue.code === "unrecognized_keys") {
    const keys = (issue as { keys: string[] }).keys;
    const prefix = issue.path.length ? issue.path.join(".") + "." : "";
    const field = prefix + keys[0];
    return fail(
      `unknown field ${JSON.stringify(field)}${keys.length > 1 ? ` (and ${keys.length - 1} more)` : ""}`,
      field,
    );
  }
  const field = issue.path.join(".") || undefined;
  return fail(field ? `${field}: ${issue.message}` : issue.message, field);
}

function fail(message: string, field: string | undefined): never {
  throw new AppError("invalid_request", message, field ? { field } : {});
}

/** Query parameters as a plain object of strings (first value wins). */
export function queryObject(ctx: Context): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.query)) out[k] = Array.isArray(v) ? v[0]! : (v as string);
  return out;
}
