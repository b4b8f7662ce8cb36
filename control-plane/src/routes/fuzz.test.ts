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
  const get = async (path: string) => ((await (await fetch(`http://127.0.0.1:${port}${path}`, { headers: auth })).json()) as any).data;
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
    ((await (await fetch(`http://127.0.0.1:${port}${path}`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(body) })).json()) as any);
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
    const ids = () => r.pick([realKeyId, realUserId, realTeamId, "ak_" + r.chars(26, "0123456789abcdefghjkmnpqrstvwxyz"), r.chars(r.int(30)), "..", "%00", "%ff", "x".repeat(9000)]);
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
      ]) + r.pick(["", `?${r.chars(r.int(30))}`, "?limit=-1", "?limit=abc", "?cursor=%%%", "?sort=x&order=y", "?wait_for_gateways=forever", "?cascade=maybe"]);
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
      if ((method === "DELETE" || (method === "POST" && /\/(activate|deactivate|revoke)/.test(path))) && [realKeyId, realUserId, realTeamId].some((id) => path.includes(id))) continue;
      if (method === "POST" && path.endsWith("/rotate") && path.includes(realKeyId)) continue;
      if (method === "POST" && path.includes("/ephemeral-tokens") && path.includes(realKeyId)) continue;
      const headers: Record<string, string> = r.next() < 0.85 ? { ...auth } : { authorization: r.pick(["", "Bearer", "Bearer x", `Basic ${TEST_MASTER_KEY}`, `Bearer ${TEST_MASTER_KEY}x`]) };
      if (r.next() < 0.8) headers["content-type"] = r.pick(["application/json", "text/plain", "application/json; charset=utf-8", "multipart/form-data", "application/x-www-form-urlencoded", "application/vnd.api+json"]);
      // Header values must be bytes fetch can send; raw sockets below cover the rest.
      const ascii = "abcdefghijklmnopqrstuvwxyz0123456789-_./%?&=:;\"'{}[] ";
      if (r.next() < 0.1) headers["tollgate-organization"] = r.pick(["org_" + "0".repeat(26), r.chars(10, ascii), ""]);
      if (r.next() < 0.1) headers["idempotency-key"] = r.chars(r.int(300), ascii);
      const hasBody = method !== "GET" && method !== "OPTIONS";
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers, ...(hasBody ? { body: bodies() } : {}) }).catch((err: unknown) => err as Error);
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
