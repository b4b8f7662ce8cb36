import { createServer, request, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayResponse } from "./gateway-response.js";

/** Each path answers one way; every answer carries x-request-id and a rate-limit header. */
const server = createServer({ ServerResponse: GatewayResponse }, (req, res) => {
  res.carry("x-request-id", "req_1");
  res.carry("x-ratelimit-limit-requests", "100");
  // Carried again: the later value replaces the earlier, as setHeader would.
  res.carry("x-ratelimit-limit-requests", "60");
  const seen = String(res.getHeader("X-Request-Id"));
  switch (req.url) {
    case "/object":
      res.writeHead(200, { "content-type": "text/plain", "x-seen": seen }).end("ok");
      return;
    case "/message":
      res.writeHead(201, "Made", { "content-type": "text/plain" }).end("ok");
      return;
    case "/flat":
      res.writeHead(200, ["content-type", "text/plain", "x-request-id", "given"]).end("ok");
      return;
    case "/pairs":
      res.writeHead(200, [["content-type", "text/plain"]] as unknown as string[]).end("ok");
      return;
    case "/third-argument":
      res.writeHead(200, undefined, { "x-given": "yes" }).end();
      return;
    case "/mixed-case":
      res.writeHead(200, { "X-Request-Id": "given" }).end();
      return;
    case "/accessors":
      res.setHeader("x-set", "1");
      res.removeHeader("x-ratelimit-limit-requests");
      res
        .writeHead(200, {
          "x-has": String(res.hasHeader("X-Request-Id")),
          "x-names": res.getHeaderNames().join(","),
          "x-all": JSON.stringify(res.getHeaders()),
        })
        .end();
      return;
    case "/refused-head":
      try {
        res.writeHead(200, { "x-bad": "caf\u0100", "x-given": "yes" });
      } catch {
        // The error answer that follows carries the request's headers, not the refused head's.
        res.writeHead(500, { "content-type": "text/plain" }).end("refused");
      }
      return;
    case "/given-wins":
      res.writeHead(429, { "x-ratelimit-limit-requests": "5", "retry-after": "1" }).end();
      return;
    case "/set-wins":
      res.setHeader("x-request-id", "set");
      res.setHeader("x-other", "kept");
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      return;
    default:
      // No writeHead: Node writes the head itself on end().
      res.statusCode = 204;
      res.end();
  }
});

let port = 0;
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function get(path: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path }, (res) => {
      res.resume();
      res.on("end", () => resolve(res));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Every header line of an answer, lowercase name, in order: a duplicate would show twice. */
function lines(res: IncomingMessage): string[] {
  const out: string[] = [];
  for (let i = 0; i < res.rawHeaders.length; i += 2)
    out.push(`${res.rawHeaders[i]!.toLowerCase()}: ${res.rawHeaders[i + 1]}`);
  return out.filter((l) => !/^(date|connection|keep-alive|transfer-encoding):/.test(l));
}

describe("GatewayResponse", () => {
  it("adds the carried headers to writeHead's object, and getHeader reads them", async () => {
    const res = await get("/object");
    expect(res.statusCode).toBe(200);
    expect(lines(res)).toEqual([
      "x-request-id: req_1",
      "x-ratelimit-limit-requests: 60",
      "content-type: text/plain",
      "x-seen: req_1",
    ]);
  });

  it("keeps a status message", async () => {
    const res = await get("/message");
    expect(res.statusCode).toBe(201);
    expect(res.statusMessage).toBe("Made");
    expect(res.headers["x-request-id"]).toBe("req_1");
  });

  it("adds them to a flat list and to a list of pairs, a given header replacing the carried one", async () => {
    const flat = await get("/flat");
    expect(lines(flat)).toEqual(["x-request-id: given", "x-ratelimit-limit-requests: 60", "content-type: text/plain"]);
    const pairs = await get("/pairs");
    expect(pairs.headers["content-type"]).toBe("text/plain");
    expect(pairs.headers["x-request-id"]).toBe("req_1");
  });

  it("lets writeHead's header of a carried name win, once", async () => {
    const res = await get("/given-wins");
    expect(res.statusCode).toBe(429);
    expect(lines(res)).toEqual(["x-request-id: req_1", "x-ratelimit-limit-requests: 5", "retry-after: 1"]);
  });

  it("lets setHeader's header of a carried name win, once, and keeps the other set headers", async () => {
    const res = await get("/set-wins");
    const got = lines(res);
    expect(got.filter((l) => l.startsWith("x-request-id:"))).toEqual(["x-request-id: set"]);
    expect(got).toContain("x-other: kept");
    expect(got).toContain("x-ratelimit-limit-requests: 60");
    expect(got).toContain("content-type: text/plain");
  });

  it("reads writeHead's headers from its third argument when the second is undefined, as Node does", async () => {
    const res = await get("/third-argument");
    expect(res.headers["x-given"]).toBe("yes");
    expect(res.headers["x-request-id"]).toBe("req_1");
  });

  it("replaces a carried header by a given one whatever its case", async () => {
    const res = await get("/mixed-case");
    expect(lines(res).filter((l) => l.startsWith("x-request-id:"))).toEqual(["x-request-id: given"]);
  });

  it("shows carried headers to hasHeader, getHeaderNames and getHeaders, and removes them with removeHeader", async () => {
    const res = await get("/accessors");
    expect(res.headers["x-has"]).toBe("true");
    expect(res.headers["x-names"]).toBe("x-set,x-request-id");
    expect(JSON.parse(String(res.headers["x-all"]))).toEqual({ "x-set": "1", "x-request-id": "req_1" });
    expect(res.headers["x-ratelimit-limit-requests"]).toBeUndefined();
  });

  it("keeps the carried headers as they were when Node refuses a head, for the error answer", async () => {
    const res = await get("/refused-head");
    expect(res.statusCode).toBe(500);
    expect(lines(res)).toEqual(["x-request-id: req_1", "x-ratelimit-limit-requests: 60", "content-type: text/plain"]);
  });

  it("carries them on a head Node writes itself (end without writeHead)", async () => {
    const res = await get("/implicit");
    expect(res.statusCode).toBe(204);
    expect(lines(res)).toEqual(["x-request-id: req_1", "x-ratelimit-limit-requests: 60"]);
  });
});
