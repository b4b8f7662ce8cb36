import { connect } from "node:net";

export interface RawResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends `data` as is over a fresh TCP connection and reads one HTTP/1.1
 * response (interim 1xx answers skipped), for requests no HTTP client would
 * send: bad bytes, broken framing, odd methods. Resolves null when the server
 * closed without answering; rejects after `timeoutMs`.
 */
export async function rawRequest(
  port: number,
  data: string | Buffer | Array<string | Buffer>,
  options: { head?: boolean; timeoutMs?: number; endAfterWrite?: boolean } = {},
): Promise<RawResponse | null> {
  return (await rawResponses(port, data, 1, options))[0] ?? null;
}

/** Like rawRequest, for up to `count` responses on one connection (pipelining); fewer when the server closes first. */
export function rawResponses(
  port: number,
  data: string | Buffer | Array<string | Buffer>,
  count: number,
  options: { head?: boolean; timeoutMs?: number; endAfterWrite?: boolean } = {},
): Promise<RawResponse[]> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1" });
    let buf = Buffer.alloc(0);
    const got: RawResponse[] = [];
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(got);
    };
    const timer = setTimeout(
      () =>
        finish(
          new Error(
            `${got.length} of ${count} responses within ${timeoutMs} ms; then ${JSON.stringify(buf.toString("latin1").slice(0, 300))}`,
          ),
        ),
      timeoutMs,
    );

    /** Takes one complete response off buf; undefined while more is needed, null when none can come. */
    const takeOne = (ended: boolean): RawResponse | null | undefined => {
      for (;;) {
        const headEnd = buf.indexOf("\r\n\r\n");
        if (headEnd === -1) return ended ? null : undefined;
        const lines = buf.subarray(0, headEnd).toString("latin1").split("\r\n");
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
        if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(lines[0])}`);
        const status = Number(m[1]);
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(":");
          const name = l.slice(0, i).trim().toLowerCase();
          const value = l.slice(i + 1).trim();
          headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
        }
        const rest = buf.subarray(headEnd + 4);
        if (status >= 100 && status < 200) {
          buf = rest;
          continue;
        }
        const take = (bodyBytes: Buffer, consumed: number): RawResponse => {
          buf = rest.subarray(consumed);
          return { status, headers, body: bodyBytes.toString("utf8") };
        };
        if (options.head || status === 204 || status === 304) return take(Buffer.alloc(0), 0);
        if (headers["content-length"] !== undefined) {
          const n = Number(headers["content-length"]);
          if (rest.length < n) return ended ? take(rest, rest.length) : undefined;
          return take(rest.subarray(0, n), n);
        }
        if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
          const chunks: Buffer[] = [];
          let at = 0;
          for (;;) {
            const lineEnd = rest.indexOf("\r\n", at);
            if (lineEnd === -1) return ended ? take(Buffer.concat(chunks), rest.length) : undefined;
            const size = parseInt(rest.subarray(at, lineEnd).toString("latin1"), 16);
            if (size === 0) return take(Buffer.concat(chunks), Math.min(rest.length, lineEnd + 4));
            if (rest.length < lineEnd + 2 + size + 2)
              return ended ? take(Buffer.concat(chunks), rest.length) : undefined;
            chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
            at = lineEnd + 2 + size + 2;
          }
        }
        return ended ? take(rest, rest.length) : undefined;
      }
    };
    const check = (ended: boolean) => {
      try {
        for (;;) {
          if (got.length >= count) return finish();
          const r = takeOne(ended);
          if (r === undefined) return;
          if (r === null) return finish();
          got.push(r);
        }
      } catch (err) {
        finish(err as Error);
      }
    };
    socket.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      check(false);
    });
    socket.on("end", () => check(true));
    socket.on("close", () => check(true));
    // A server that answers before reading everything may reset the connection: keep what arrived.
    socket.on("error", () => check(true));
    socket.on("connect", () => {
      for (const part of Array.isArray(data) ? data : [data]) socket.write(part);
      if (options.endAfterWrite) socket.end();
    });
  });
}

/** A request in HTTP/1.1 wire form, with Host and Connection: close unless given. */
export function wire(
  method: string,
  path: string,
  headers: Array<[string, string]> = [],
  body?: string | Buffer,
): Buffer {
  const names = new Set(headers.map(([n]) => n.toLowerCase()));
  const all: Array<[string, string]> = [...headers];
  if (!names.has("host")) all.unshift(["host", "127.0.0.1"]);
  if (!names.has("connection")) all.push(["connection", "close"]);
  if (body !== undefined && !names.has("content-length") && !names.has("transfer-encoding")) {
    all.push(["content-length", String(Buffer.byteLength(body))]);
  }
  const head = `${method} ${path} HTTP/1.1\r\n${all.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`;
  return Buffer.concat([
    Buffer.from(head, "latin1"),
    body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body, "utf8"),
  ]);
}
