import { AppError } from "@tollgate/shared";
import { z } from "zod";

/**
 * The one cursor codec of the admin API. A list keyed by id alone pages on the
 * last id; a list sorted on something else pages on an opaque base64url JSON
 * value that only this module reads back.
 */

/** `limit` and `cursor` as every list endpoint accepts them; extend it for filters. */
export function pageQuery(maxCursorLength = 100) {
  return z.strictObject({
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    cursor: z.string().max(maxCursorLength).optional(),
  });
}

export const pagination = pageQuery();

/** Wraps a page of rows keyed by id the same way on every list endpoint. */
export function page<T extends { id: string }>(rows: T[], limit: number): { data: T[]; next_cursor: string | null } {
  return { data: rows, next_cursor: rows.length === limit ? rows[rows.length - 1]!.id : null };
}

/** A list returned whole: the same envelope, with no next page. */
export function wholeList<T>(rows: T[]): { data: T[]; next_cursor: null } {
  return { data: rows, next_cursor: null };
}

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

/** Decodes a cursor this API returned, or answers 400 when `accept` refuses its shape. */
export function decodeCursor<T>(raw: string, accept: (value: unknown) => T | undefined): T {
  try {
    const decoded = accept(JSON.parse(Buffer.from(raw, "base64url").toString("utf8")) as unknown);
    if (decoded !== undefined) return decoded;
  } catch {
    // Not base64url JSON: the same answer as a well-formed cursor of the wrong shape.
  }
  throw new AppError("invalid_request", "cursor is not one this API returned: pass next_cursor unchanged", {
    field: "cursor",
  });
}
