import { type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders, ServerResponse } from "node:http";

/**
 * The client server's response: Node's, plus the headers every answer of a request carries
 * (its x-request-id, its key's rate limits), added when the head is written rather than
 * through setHeader. setHeader keeps a per-response header object (made a dictionary as it
 * grows) and turns writeHead's own headers into setHeader calls too; a request that carries
 * its headers this way hands Node one flat list, which it writes as given.
 *
 * Carried names are lowercase. A header of the same name (in any case) given to writeHead, or
 * set with setHeader, replaces the carried one, writeHead's winning over both, as it wins over
 * setHeader's. getHeader, hasHeader, getHeaderNames, getHeaders and removeHeader see carried
 * headers until the head is written.
 */
export class GatewayResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  /** [name, value, …]; it becomes the list handed to Node at writeHead. */
  private carried: OutgoingHttpHeader[] = [];
  /** setHeader or appendHeader was called: Node then merges writeHead's list into those headers. */
  private headersSet = false;

  /** A header every answer to this request carries (name lowercase). */
  carry(name: string, value: string): void {
    const c = this.carried;
    for (let i = 0; i < c.length; i += 2) {
      if (c[i] === name) {
        c[i + 1] = value;
        return;
      }
    }
    c.push(name, value);
  }

  override setHeader(name: string, value: number | string | readonly string[]): this {
    this.headersSet = true;
    return super.setHeader(name, value);
  }

  override appendHeader(name: string, value: string | readonly string[]): this {
    this.headersSet = true;
    return super.appendHeader(name, value);
  }

  override getHeader(name: string): number | string | string[] | undefined {
    const own = super.getHeader(name);
    if (own !== undefined) return own;
    const at = carriedIndex(this.carried, this.carried.length, name.toLowerCase());
    return at === -1 ? undefined : (this.carried[at + 1] as string);
  }

  override hasHeader(name: string): boolean {
    return this.getHeader(name) !== undefined;
  }

  override getHeaderNames(): string[] {
    const names = super.getHeaderNames();
    const c = this.carried;
    for (let i = 0; i < c.length; i += 2) if (!names.includes(c[i] as string)) names.push(c[i] as string);
    return names;
  }

  override getHeaders(): OutgoingHttpHeaders {
    const headers = super.getHeaders();
    const c = this.carried;
    for (let i = 0; i < c.length; i += 2) headers[c[i] as string] ??= c[i + 1] as string;
    return headers;
  }

  override removeHeader(name: string): void {
    const c = this.carried;
    const at = carriedIndex(c, c.length, name.toLowerCase());
    if (at !== -1) c.splice(at, 2);
    super.removeHeader(name);
  }

  override writeHead(
    statusCode: number,
    statusMessage?: string,
    headers?: OutgoingHttpHeaders | OutgoingHttpHeader[],
  ): this;
  override writeHead(statusCode: number, headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this;
  override writeHead(
    statusCode: number,
    messageOrHeaders?: string | OutgoingHttpHeaders | OutgoingHttpHeader[],
    maybeHeaders?: OutgoingHttpHeaders | OutgoingHttpHeader[],
  ): this {
    const message = typeof messageOrHeaders === "string" ? messageOrHeaders : undefined;
    // As Node reads them: writeHead(status, undefined, headers) takes the third argument.
    const given = message === undefined ? (maybeHeaders ?? (messageOrHeaders as typeof maybeHeaders)) : maybeHeaders;
    let list = this.carried;
    if (list.length === 0) {
      return message === undefined ? super.writeHead(statusCode, given) : super.writeHead(statusCode, message, given);
    }
    const carriedLength = list.length;
    if (this.headersSet) {
      // Headers set with setHeader meanwhile: Node merges this list into them. A carried name also
      // set that way gives way to it (blanked in a copy; Node skips an empty name), unless
      // writeHead itself gives it, which wins over both, as with setHeader alone.
      list = list.slice();
      for (let i = 0; i < carriedLength; i += 2) if (super.getHeader(list[i] as string) !== undefined) list[i] = "";
    }
    try {
      if (Array.isArray(given)) {
        if (given.length > 0 && Array.isArray(given[0])) {
          for (const pair of given as unknown as [string, OutgoingHttpHeader][])
            add(list, carriedLength, pair[0], pair[1]);
        } else {
          for (let i = 0; i + 1 < given.length; i += 2) add(list, carriedLength, given[i] as string, given[i + 1]!);
        }
      } else if (given !== undefined) {
        // for-in, not Object.entries: no [name, value] array per header.
        for (const name in given) {
          const value = given[name];
          if (value !== undefined) add(list, carriedLength, name, value);
        }
      }
      return message === undefined ? super.writeHead(statusCode, list) : super.writeHead(statusCode, message, list);
    } catch (err) {
      // Refused (a bad status or header value): the carried headers are as they were, for the
      // error answer that follows, without the refused head's own.
      if (list === this.carried) list.length = carriedLength;
      throw err;
    }
  }
}

/** Where `name` (lowercase) sits among the first `length` entries of a carried list; -1 if it does not. */
function carriedIndex(list: OutgoingHttpHeader[], length: number, name: string): number {
  for (let i = 0; i < length; i += 2) if (list[i] === name) return i;
  return -1;
}

/** Appends a given header, or replaces the carried one of the same name. */
function add(list: OutgoingHttpHeader[], carriedLength: number, name: string, value: OutgoingHttpHeader): void {
  // Header names are case-insensitive (toLowerCase returns an already lowercase name as it is).
  const at = carriedIndex(list, carriedLength, name.toLowerCase());
  if (at === -1) list.push(name, value);
  else list[at + 1] = value;
}
