import { AppError } from "@tollgate/shared";
import type { Context, Next } from "koa";

/**
 * Input Postgres or JavaScript would mishandle, refused up front with a 400 naming the field:
 * NUL characters (Postgres text cannot hold them: the insert or filter failed with a 500),
 * `__proto__` keys (JSON.parse keeps them as own keys, but spreading or validating the object
 * dropped them silently), and calendar dates that do not exist (2999-02-30 was shifted to
 * March, 0000-00-00 accepted).
 */

const NUL = "\u0000";

/** Koa middleware: NUL in the path or in any query parameter is a 400 naming it. */
export function inputGuard() {
  return (ctx: Context, next: Next) => {
    if (ctx.path.includes(NUL) || /%00/.test(ctx.path))
      throw new AppError("invalid_request", "the path must not contain NUL characters", { field: "path" });
    const query = ctx.query;
    for (const key of Object.keys(query)) {
      const value = query[key];
      const values = Array.isArray(value) ? value : [value ?? ""];
      if (key.includes(NUL) || values.some((v) => v.includes(NUL))) {
        const field = key.replaceAll(NUL, "\\u0000");
        throw new AppError("invalid_request", `${field}: must not contain NUL characters`, { field });
      }
    }
    return next();
  };
}

/** Walks a parsed JSON body: a NUL in any string or key, or a `__proto__` key, is a 400 naming its path. */
export function checkJsonInput(value: unknown, path = ""): void {
  if (typeof value === "string") {
    if (value.includes(NUL))
      throw new AppError(
        "invalid_request",
        `${path || "body"}: must not contain NUL characters`,
        path ? { field: path } : {},
      );
    return;
  }
  if (value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkJsonInput(v, path ? `${path}.${i}` : String(i)));
    return;
  }
  for (const key of Object.keys(value)) {
    const field = path ? `${path}.${key}` : key;
    if (key === "__proto__")
      throw new AppError("invalid_request", `${field}: "__proto__" is not allowed as a key`, { field });
    if (key.includes(NUL)) {
      const shown = field.replaceAll(NUL, "\\u0000");
      throw new AppError("invalid_request", `${shown}: keys must not contain NUL characters`, { field: shown });
    }
    checkJsonInput((value as Record<string, unknown>)[key], field);
  }
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))?)?$/i;

/** True when `text` is an ISO-8601 date or timestamp naming a day that exists (year 1 to 9999). */
export function isRealCalendarDate(text: string): boolean {
  const m = ISO_DATE.exec(text);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const daysInMonth = new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && !isLeap(year) ? 1 : 0);
  if (day > daysInMonth) return false;
  if (m[4] !== undefined && (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6] ?? 0) > 59)) return false;
  if (m[7] !== undefined && (Number(m[7]) > 23 || Number(m[8]) > 59)) return false;
  return true;
}

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/**
 * Postgres data exceptions (SQLSTATE class 22: a value out of range, an invalid text
 * representation, an impossible date) come from input that got past validation; they are
 * the client's, so a 400, never a 500.
 */
export function dataExceptionToAppError(err: unknown): AppError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string" || !/^22[0-9A-Z]{3}$/.test(code)) return undefined;
  return new AppError("invalid_request", "a value in the request is out of range or malformed");
}
