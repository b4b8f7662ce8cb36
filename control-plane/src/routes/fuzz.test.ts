import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControlPlane } from "../index.js";
import { startTestControlPlane, type TestControlPlane } from "../../test/test-control-plane.js";
import { deepJson, prng } from "@tollgate/testkit";
import { TEST_MASTER_KEY } from "../../test/test-config.js";

let test: TestControlPlane;
let cp: ControlPlane;
let port: number;
const auth = { authorization: `Bearer ${TEST_MASTER_KEY}` };
let realKeyId: string;
let realUserId: string;
let realTeamId: string;

async function state() {
  const get = async (path: string) =>
    ((await (await fetch(`http://127.0.0.1:${port}${path}`, { headers: auth })).json()) as any).data;
  return JSON.stringify({
    teams: await get("/internal/teams?limit=1000"),
    users: await get("/internal/users?limit=1000"),
    keys: await get("/internal/api-keys?limit=1000"),
    audit: await get("/internal/audit-logs?limit=1000"),
    tokens: await get("/internal/gateway-tokens"),
    orgs: await get("/internal/orgs"),
  });
}

/** Sends raw bytes and returns the status line and body (for requests fetch refuses to build). */
function raw(request: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.end(request));
    let text = "";
    socket.on("data", (c) => (text += c));
    socket.on("error", reject);
    socket.on("close", () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf("\r\n\r\n") + 4) });
    });
  });
}

beforeAll(async () => {
  test = await startTestControlPlane({
    // The fuzzer sends bad master keys from 127.0.0.1 on purpose.
    bruteForce: { enabled: false, maxFailedAttempts: 5, ttlMs: 1000 },
  });
  cp = test.cp;
  port = test.port;
  const post = async (path: string, body: unknown) =>
    (await (
      await fetch(`http://127.0.0.1:${port}${path}`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify(body),
      })
    ).json()) as any;
  realTeamId = (await post("/internal/teams", { name: "fuzz-team" })).id;
  realUserId = (await post("/internal/users", { external_id: "fuzz@example.com", team_id: realTeamId })).id;
  realKeyId = (await post("/internal/api-keys", { name: "fuzz-key", user_id: realUserId })).id;
});

afterAll(async () => {
  await test?.stop();
});

describe("admin API under hostile input", () => {
  it("answers 1,200 malformed requests with JSON 4xx errors, never a 5xx, and writes nothing", async () => {
    const before = await state();
    const r = prng(20261122);
    const ids = () =>
      r.pick([
        realKeyId,
        realUserId,
        realTeamId,
        "ak_" + r.chars(26, "0123456789abcdefghjkmnpqrstvwxyz"),
        r.chars(r.int(30)),
        "..",
        "%00",
        "%ff",
        "x".repeat(9000),
      ]);
    const paths = () =>
      r.pick([
        "/internal/teams",
        "/internal/users",
        "/internal/api-keys",
        "/internal/api-keys/bulk",
        "/internal/gateway-tokens",
        "/internal/orgs",
        `/internal/teams/${ids()}`,
        `/internal/users/${ids()}`,
        `/internal/api-keys/${ids()}`,
        `/internal/api-keys/${ids()}/${r.pick(["rotate", "ephemeral-tokens", "activate", "deactivate", "revoke", "nope"])}`,
        `/internal/${r.chars(r.int(20))}`,
        `/${r.chars(r.int(50))}`,
        "/internal/../internal/teams",
      ]) +
      r.pick([
        "",
        `?${r.chars(r.int(30))}`,
        "?limit=-1",
        "?limit=abc",
        "?cursor=%%%",
        "?sort=x&order=y",
        "?wait_for_gateways=forever",
        "?cascade=maybe",
      ]);
    const bodies = () =>
      r.pick([
        () => r.chars(r.int(200)),
        () => JSON.stringify(r.json()),
        // Shaped like a real create, plus a field no schema accepts: must be refused whole.
        () => JSON.stringify({ ...(r.json() as object), name: r.chars(8), user_id: realUserId, __fuzz: r.json() }),
        () => deepJson(1 + r.int(5000)),
        () => `{"name":"${"y".repeat(r.int(3_000_000))}"}`,
        () => "",
        () => "null",
        () => "[]",
        () => '{"name": "unterminated',
      ])();
    let count = 0;
    for (let i = 0; i < 1100; i++) {
      const method = r.pick(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
      const path = paths();
      // No DELETE or action on the real resources: those are valid requests, not malformed ones.
      if (
        (method === "DELETE" || (method === "POST" && /\/(activate|deactivate|revoke)/.test(path))) &&
        [realKeyId, realUserId, realTeamId].some((id) => path.includes(id))
      )
        continue;
      if (method === "POST" && path.endsWith("/rotate") && path.includes(realKeyId)) continue;
      if (method === "POST" && path.includes("/ephemeral-tokens") && path.includes(realKeyId)) continue;
      const headers: Record<string, string> =
        r.next() < 0.85
          ? { ...auth }
          : {
              authorization: r.pick([
                "",
                "Bearer",
                "Bearer x",
                `Basic ${TEST_MASTER_KEY}`,
                `Bearer ${TEST_MASTER_KEY}x`,
              ]),
            };
      if (r.next() < 0.8)
        headers["content-type"] = r.pick([
          "application/json",
          "text/plain",
          "application/json; charset=utf-8",
          "multipart/form-data",
          "application/x-www-form-urlencoded",
          "application/vnd.api+json",
        ]);
      // Header values must be bytes fetch can send; raw sockets below cover the rest.
      const ascii = "abcdefghijklmnopqrstuvwxyz0123456789-_./%?&=:;\"'{}[] ";
      if (r.next() < 0.1) headers["tollgate-organization"] = r.pick(["org_" + "0".repeat(26), r.chars(10, ascii), ""]);
      if (r.next() < 0.1) headers["idempotency-key"] = r.chars(r.int(300), ascii);
      const hasBody = method !== "GET" && method !== "OPTIONS";
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        method,
        headers,
        ...(hasBody ? { body: bodies() } : {}),
      }).catch((err: unknown) => err as Error);
      if (res instanceof Error) throw new Error(`${method} ${path.slice(0, 100)}: ${res.message}`);
      const text = await res.text();
      count++;
      expect(res.status, `${method} ${path.slice(0, 100)}`).toBeLessThan(500);
      if (res.status >= 400) {
        const body = JSON.parse(text);
        expect(typeof body.error.code).toBe("string");
        expect(typeof body.error.message).toBe("string");
        expect(text).not.toContain(TEST_MASTER_KEY);
      }
    }
    // Malformed HTTP that fetch will not even build.
    const rawRequests = [
      "GARBAGE\r\n\r\n",
      "GET /internal/teams HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
      `GET /internal/teams HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
      "POST /internal/teams HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n",
      "POST /internal/teams HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
      `GET /${"a".repeat(10_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    ];
    for (let i = 0; i < 100; i++) {
      const res = await raw(rawRequests[i % rawRequests.length]!);
      count++;
      expect(res.status, rawRequests[i % rawRequests.length]!.slice(0, 40)).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(JSON.parse(res.body).error).toBeDefined();
    }
    expect(count).toBeGreaterThanOrEqual(1000);
    // Still healthy, still serving, and nothing changed.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect(await state()).toBe(before);
  }, 120_000);
});

describe("inputs that used to answer 500 or be shifted silently", () => {
  const send = async (method: string, path: string, body?: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { ...auth, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body } : {}),
    });
    return { status: res.status, body: (await res.json()) as { error?: { code: string; field?: string } } };
  };
  const cursor = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

  it("refuses NUL characters in names, filters, cursors and paths with a 400 naming the field", async () => {
    const before = await state();
    const cases: Array<[string, string, string | undefined, string]> = [
      ["POST", "/internal/teams", JSON.stringify({ name: "a\u0000b" }), "name"],
      ["POST", "/internal/users", JSON.stringify({ external_id: "x\u0000@example.com" }), "external_id"],
      [
        "POST",
        "/internal/api-keys",
        JSON.stringify({ name: "k", user_id: realUserId, metadata: { "a\u0000": 1 } }),
        "metadata.a\\u0000",
      ],
      ["PATCH", `/internal/teams/${realTeamId}`, JSON.stringify({ name: "\u0000" }), "name"],
      ["GET", "/internal/api-keys?search=a%00b", undefined, "search"],
      ["GET", "/internal/teams?cursor=%00", undefined, "cursor"],
      ["GET", "/internal/audit-logs?action=%00", undefined, "action"],
      ["GET", "/internal/users/%00", undefined, "path"],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await send(method, path, body);
      expect(res.status, `${method} ${path} ${body ?? ""}`).toBe(400);
      expect(res.body.error?.field, `${method} ${path}`).toBe(field.replaceAll("\\\\", "\\"));
    }
    expect(await state()).toBe(before);
  });

  it("refuses well-formed but meaningless list cursors with a 400 on cursor", async () => {
    for (const [sort, v] of [
      ["created", "not a date"],
      ["created", 12],
      ["requests", "many"],
      ["requests", 1e300],
      ["name", 5],
    ] as const) {
      const res = await send("GET", `/internal/api-keys?sort=${sort}&cursor=${cursor({ v, id: "ak_x" })}`);
      expect(res.status, `${sort} ${String(v)}`).toBe(400);
      expect(res.body.error?.field).toBe("cursor");
    }
    for (const path of ["/internal/teams", "/internal/users", "/internal/audit-logs", "/internal/model-prices"]) {
      for (const c of [cursor({ v: "x", id: 1 }), "A".repeat(90), cursor([1, 2, 3])]) {
        const res = await send("GET", `${path}?cursor=${c}`);
        expect(res.status, `${path} ${c}`).toBeLessThan(500);
      }
    }
  });

  it("refuses impossible calendar dates instead of shifting them", async () => {
    for (const expires of [
      "2999-02-30T00:00:00Z",
      "0000-00-00T00:00:00Z",
      "2999-13-01T00:00:00Z",
      "2999-04-31T12:00:00Z",
      "2999-01-01T25:00:00Z",
    ]) {
      const res = await send(
        "POST",
        "/internal/api-keys",
        JSON.stringify({ name: "dated", user_id: realUserId, expires_at: expires }),
      );
      expect(res.status, expires).toBe(400);
      expect(res.body.error?.field).toBe("expires_at");
    }
    expect((await send("GET", "/internal/usage?from=2999-02-30")).body.error?.field).toBe("from");
    expect((await send("GET", "/internal/usage?to=0000-00-00")).status).toBe(400);
    expect((await send("GET", "/internal/audit-logs?since=2999-02-30T00:00:00Z")).body.error?.field).toBe("since");
    // A real leap day is fine.
    const leap = await send(
      "POST",
      "/internal/api-keys",
      JSON.stringify({ name: "leap", user_id: realUserId, expires_at: "2996-02-29T00:00:00Z" }),
    );
    expect(leap.status).toBe(201);
  });

  it("refuses __proto__ keys in metadata with a 400 naming the field", async () => {
    const res = await send(
      "POST",
      "/internal/api-keys",
      '{"name":"proto","user_id":"' + realUserId + '","metadata":{"__proto__":{"admin":true}}}',
    );
    expect(res.status).toBe(400);
    expect(res.body.error?.field).toBe("metadata.__proto__");
    const nested = await send("PATCH", `/internal/api-keys/${realKeyId}`, '{"metadata":{"a":{"__proto__":{"x":1}}}}');
    expect(nested.status).toBe(400);
    expect(nested.body.error?.field).toBe("metadata.a.__proto__");
  });
});

describe("a request that does not arrive in time", () => {
  it("answers 408 with a JSON body", async () => {
    const slow = await startTestControlPlane({ requestTimeoutMs: 1_000 });
    try {
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const socket = net.connect(slow.port, "127.0.0.1", () =>
          socket.write(
            `POST /internal/teams HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_MASTER_KEY}\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"na`,
          ),
        );
        let text = "";
        socket.on("data", (c) => (text += c));
        socket.on("error", reject);
        socket.on("close", () =>
          resolve({
            status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
            body: text.slice(text.indexOf("\r\n\r\n") + 4),
          }),
        );
      });
      expect(res.status).toBe(408);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: "request_timeout" } });
    } finally {
      await slow.stop();
    }
  }, 30_000);
});
