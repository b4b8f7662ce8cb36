import { createServer } from "node:net";

/** A TCP port free on 127.0.0.1 right now (a race remains; prefer port 0 where possible). */
export function getFreePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

export interface HttpResult<T = any> {
  status: number;
  /** Parsed JSON, the raw text when not JSON, null when empty. */
  body: T;
  headers: Headers;
}

export async function readBody(res: Response): Promise<unknown> {
  const text = await res.text();
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export interface AdminClient {
  get<T = any>(path: string): Promise<HttpResult<T>>;
  post<T = any>(path: string, body?: unknown): Promise<HttpResult<T>>;
  patch<T = any>(path: string, body?: unknown): Promise<HttpResult<T>>;
  put<T = any>(path: string, body?: unknown): Promise<HttpResult<T>>;
  delete<T = any>(path: string): Promise<HttpResult<T>>;
  /** Any method, with optional extra headers (e.g. a different Authorization). */
  request<T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<HttpResult<T>>;
}

/** JSON client for the control plane's admin API, authenticated with the master key. */
export function adminClient(baseUrl: string, masterKey: string): AdminClient {
  const base = baseUrl.replace(/\/+$/, "");
  async function request<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<HttpResult<T>> {
    const res = await fetch(`${base}${path.startsWith("/") ? path : `/${path}`}`, {
      method,
      headers: {
        authorization: `Bearer ${masterKey}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await readBody(res)) as T, headers: res.headers };
  }
  return {
    get: (path) => request("GET", path),
    post: (path, body) => request("POST", path, body ?? {}),
    patch: (path, body) => request("PATCH", path, body ?? {}),
    put: (path, body) => request("PUT", path, body ?? {}),
    delete: (path) => request("DELETE", path),
    request,
  };
}
/** Status and client endpoints of a started gateway. */
export function endpoints(addr: { port: number; statusPort: number }) {
  const base = `http://127.0.0.1:${addr.port}`;
  const status = `http://127.0.0.1:${addr.statusPort}`;
  return {
    base,
    status,
    readyz: async () => {
      const res = await fetch(`${status}/readyz`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    metrics: async () => (await fetch(`${status}/metrics`)).text(),
    chat: (apiKey: string) =>
      fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
      }),
  };
}
