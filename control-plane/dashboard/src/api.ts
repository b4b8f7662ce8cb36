/**
 * The dashboard's only way to the server: the public /internal admin API,
 * authenticated by the session cookie, every unsafe call carrying the CSRF token.
 */
import type { components, paths } from "./api-types.js";

/**
 * The API's shapes come from its OpenAPI document (api-types.ts is generated
 * from the routes' zod schemas), so a renamed or retyped field breaks this
 * build instead of a page at run time.
 */
type Schemas = components["schemas"];

export type SessionInfo = Schemas["Session"];
export type SessionActor = SessionInfo["session"]["actor"];
export type KeyStatus = Schemas["ApiKey"]["status"];
/** A key as a list shows it (with usage_pct) or as one read returns it (without). */
export type ApiKey = Schemas["ApiKey"] & { usage_pct?: number };
export type Revealed = Schemas["RevealedApiKey"];
export type Team = Schemas["Team"];
export type User = Schemas["User"];
export type Gateway = Schemas["Gateway"];
export type GatewayToken = Schemas["GatewayToken"];
export type AuditEntry = Schemas["AuditEntry"];
export type UsageRow = Schemas["UsageRow"];
export type ModelPrice = Schemas["ModelPrice"];
export type Org = Schemas["Org"];

/** The JSON body an operation takes, e.g. RequestBody<"/internal/api-keys", "post">. */
export type RequestBody<P extends keyof paths, M extends "post" | "put" | "patch"> = paths[P][M] extends {
  requestBody?: { content: { "application/json": infer B } };
}
  ? B
  : never;
/**
 * A body built field by field from a form: only the operation's field names are
 * allowed (a renamed API field fails this build), values are checked by the API.
 */
export type FormBody<P extends keyof paths, M extends "post" | "put" | "patch"> = {
  [K in keyof RequestBody<P, M>]?: unknown;
};

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/** An API error as the admin API reports it: a stable code, a message, maybe the field at fault. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

let csrfToken: string | undefined;
let organization: string | undefined;

/** The organization every call acts on (the master key may pick any); undefined = the default one. */
export function setOrganization(id: string | undefined): void {
  organization = id;
}
let onSessionLost: () => void = () => {};

export function setCsrfToken(token: string | undefined): void {
  csrfToken = token;
}

/** Called when the server says the session is gone, so the app can show the sign-in page. */
export function setSessionLostHandler(handler: () => void): void {
  onSessionLost = handler;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["x-csrf-token"] = csrfToken;
  if (organization && !path.startsWith("/internal/sessions")) headers["tollgate-organization"] = organization;
  const res = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    throw new ApiError(
      res.status,
      "invalid_response",
      `the server answered ${res.status} with a body that is not JSON`,
    );
  }
  if (!res.ok) {
    const e = (parsed as { error?: { code?: string; message?: string; field?: string } })?.error ?? {};
    const err = new ApiError(res.status, e.code ?? "error", e.message ?? `request failed with ${res.status}`, e.field);
    if (res.status === 401 && path !== "/internal/sessions") onSessionLost();
    throw err;
  }
  return parsed as T;
}

/** A query string from the defined, non-empty values. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : "";
}

/** Every page of a list endpoint (for the small lists: users, teams, gateways). */
export async function listAll<T>(path: string, max = 5000): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const sep: string = path.includes("?") ? "&" : "?";
    const page: Page<T> = await api<Page<T>>(
      "GET",
      `${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    );
    out.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}
