import { type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders, ServerResponse } from "node:http";

/**
 * The client server's response: Node's, plus the headers every answer of a request carries
 * (its x-request-id, its key's rate limits), added when the head is written rather than
 * through setHeader. setHeader keeps a per-response header object (made a dictionary as it
 * grows) and turns writeHead's own headers into setHeader calls too; a request that carries
 * its headers this way hands Node one flat list, which it writes as given.
 *
 * Carried names are lowercase; a header of the same name given to writeHead (or set with
 * setHeader) replaces the carried one, as setHeader's own headers are replaced.
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
    const c = this.carried;
    const lower = name.toLowerCase();
    for (let i = 0; i < c.length; i += 2) if (c[i] === lower) return c[i + 1];
    return undefined;
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
    const given = message === undefined ? (messageOrHeaders as typeof maybeHeaders) : maybeHeaders;
    const list = this.carried;
    if (list.length === 0) {
      return message === undefined ? super.writeHead(statusCode, given) : super.writeHead(statusCode, message, given);
    }
    const carriedLength = list.length;
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
    // Headers set with setHeader meanwhile: Node merges this list into them, this list winning.
    // Those of the carried names are the exception: as documented above, the set one wins.
    if (this.headersSet) {
      for (let i = 0; i < carriedLength; i += 2) if (super.hasHeader(list[i] as string)) list[i] = "";
    }
    return message === undefined ? super.writeHead(statusCode, list) : super.writeHead(statusCode, message, list);
  }
}

/** Appends a given header, or replaces the carried one of the same name. */
function add(list: OutgoingHttpHeader[], carriedLength: number, name: string, value: OutgoingHttpHeader): void {
  for (let i = 0; i < carriedLength; i += 2) {
    if (list[i] === name) {
      list[i + 1] = value;
      return;
    }
  }
  list.push(name, value);
}
