import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { generateApiKey } from "@tollgate/shared";
import { createGateway, type Gateway } from "../index.js";
import {
  capturedLogger,
  endpoints,
  eventually,
  FakeControlPlane,
  makeKey,
  makeSigningKey,
  mintToken,
  type RawResponse,
  rawResponses,
  tempDir,
} from "@tollgate/testkit";
import { testConfig } from "../../test/test-config.js";

/**
 * Hostile traffic against a running gateway: generated malformed requests
 * (garbage and deeply nested JSON, huge strings, wrong content types, random
 * headers and credentials of every shape, odd paths and methods, broken
 * framing) sent as raw bytes. Fixed seeds: a failure replays identically, and
 * fast-check prints the shrunk request.
 */
/** FUZZ_SEED=<n> explores other inputs; the default keeps CI reproducible. */
const SEED = Number(process.env.FUZZ_SEED ?? 20_251_122);
const HOSTILE_HTTP_RUNS = 700;
const HOSTILE_BODY_RUNS = 400;

const ORG = "org_fuzz";
const key = makeKey();
/** Valid, but its scopes refuse most requests (403). */
const scoped = makeKey({ allowedModels: ["gpt-4o*"], ipAllowlist: ["127.0.0.1/32"] });
const signer = makeSigningKey();
const validToken = mintToken(signer, { keyId: key.upsert.id, orgId: ORG, ttlSeconds: 3600 });
/** A request may only succeed if it carries one of these. */
const VALID_CREDENTIALS = [key.secret, scoped.secret, validToken];

const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === "a" ? "b" : "a") + s.slice(i + 1);

// ---- generators -------------------------------------------------------------

/** Text that is mostly printable, sometimes control bytes (which HTTP forbids in most places) or any Unicode. */
const garbage = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary-ascii", maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 40 }).map((t) => t.replace(/[\0-\x1f\x7f]/g, "")) },
);

/** A credential value: valid, near-valid, or nothing like one. */
const credentialValue = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...VALID_CREDENTIALS) },
  { weight: 2, arbitrary: fc.nat({ max: key.secret.length - 1 }).map((i) => flip(key.secret, i)) },
  { weight: 1, arbitrary: fc.nat({ max: key.secret.length }).map((n) => key.secret.slice(0, n)) },
  { weight: 1, arbitrary: fc.constant(generateApiKey().key) },
  { weight: 1, arbitrary: fc.constant(`llmp_${"A".repeat(38)}`) },
  { weight: 1, arbitrary: fc.nat({ max: validToken.length - 1 }).map((i) => flip(validToken, i)) },
  { weight: 1, arbitrary: fc.constant(mintToken(makeSigningKey(), { keyId: key.upsert.id, orgId: ORG })) },
  { weight: 1, arbitrary: garbage.map((g) => `llmpe_${g}`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom("sk-proj-abc", "sk-ant-api03-xyz", "", " ", "null", `${key.secret}${key.secret}`),
  },
  { weight: 2, arbitrary: garbage },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 12_000 }).map((n) => "llmp_" + "x".repeat(n)) },
);

/** The credential headers a request carries, in every shape. */
const credentialHeaders = fc.array(
  fc
    .tuple(
      fc.constantFrom("authorization", "Authorization", "x-api-key", "X-Api-Key", "api-key", "API-KEY"),
      fc.tuple(
        fc.constantFrom("Bearer ", "bearer ", "Bearer\t", "Basic ", "", "Bearer  ", "Token "),
        credentialValue,
        fc.constantFrom("", " ", " extra"),
      ),
    )
    .map(([name, [scheme, value, tail]]): [string, string] => [
      name,
      name.toLowerCase() === "authorization" ? `${scheme}${value}${tail}` : `${value}${tail}`,
    ]),
  { maxLength: 3 },
);

const headerName = fc
  .oneof(
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        "accept",
        "user-agent",
        "x-forwarded-for",
        "expect",
        "connection",
        "upgrade",
        "cookie",
        "te",
        "host",
        "x-request-id",
        "content-type",
        "openai-organization",
      ),
    },
    { weight: 3, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/) },
    { weight: 1, arbitrary: fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 12 }) },
  )
  .filter((n) => !["content-length", "transfer-encoding"].includes(n.trim().toLowerCase()));

const headerValue = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: garbage },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "100-continue",
      "keep-alive",
      "close",
      "upgrade",
      "websocket",
      "h2c",
      "1.2.3.4, ::1, nonsense",
      "::ffff:10.0.0.1",
      "*/*",
    ),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 20_000 }).map((n) => "v".repeat(n)) },
);

const otherHeaders = fc.array(fc.tuple(headerName, headerValue), { maxLength: 4 });

const contentType = fc.option(
  fc.oneof(
    fc.constantFrom(
      "application/json",
      "application/json; charset=utf-16",
      "text/plain",
      "multipart/form-data; boundary=xyz",
      "application/x-www-form-urlencoded",
      "",
      "application/json, application/json",
    ),
    garbage,
  ),
  { nil: undefined },
);

const nested = fc
  .tuple(fc.integer({ min: 30, max: 3_000 }), fc.constantFrom("array", "object", "mixed", "unbalanced"))
  .map(([n, shape]) => {
    switch (shape) {
      case "array":
        return "[".repeat(n) + "]".repeat(n);
      case "object":
        return '{"a":'.repeat(n) + "1" + "}".repeat(n);
      case "mixed":
        return `{"model":"mock-gpt","messages":${'[{"x":'.repeat(n)}1${"}]".repeat(n)}}`;
      default:
        return "]".repeat(n) + "[".repeat(n * 2);
    }
  });

const hugeString = fc
  .tuple(fc.integer({ min: 1_000, max: 150_000 }), fc.constantFrom("model", "content", "key"))
  .map(([n, where]) => {
    const s = "a".repeat(n);
    if (where === "model") return JSON.stringify({ model: s, messages: [{ role: "user", content: "hi" }] });
    if (where === "content") return JSON.stringify({ model: "mock-gpt", messages: [{ role: "user", content: s }] });
    return JSON.stringify({ [s]: 1 });
  });

/** Chat-shaped bodies with fields of the wrong types. */
const chatish = fc
  .record({
    model: fc.oneof(
      fc.constant("mock-gpt"),
      fc.constant(""),
      fc.integer(),
      fc.constant(null),
      garbage,
      fc.array(fc.string(), { maxLength: 2 }),
    ),
    messages: fc.oneof(
      fc.constant([]),
      fc.constant("hi"),
      fc.constant(null),
      fc.json({ maxDepth: 2 }).map((j) => JSON.parse(j) as unknown),
    ),
    stream: fc.oneof(fc.boolean(), fc.constant("yes")),
  })
  .map((o) => JSON.stringify(o));

const body = fc.oneof(
  { weight: 3, arbitrary: fc.json({ maxDepth: 4 }) },
  { weight: 2, arbitrary: nested },
  { weight: 2, arbitrary: hugeString },
  { weight: 2, arbitrary: chatish },
  { weight: 2, arbitrary: garbage },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 2_000 }).map((b) => Buffer.from(b)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "",
      "{",
      '{"model":',
      "null",
      "[]",
      '"str"',
      '{"model":"mock-gpt","messages":[{"role":"user","content":"\\ud800"}]}',
    ),
  },
);

const path = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "/v1/chat/completions",
      "/v1/models",
      "/v1/chat/completions/",
      "/v1/models?limit=1",
      "/v1/../v1/models",
      "/v1/models%00",
      "/%2e%2e/%2e%2e/etc/passwd",
      "//v1/models",
      "/V1/MODELS",
      "*",
      "http://evil.example/v1/models",
      "/v1/chat/completions?x=%ZZ",
      "/",
      "",
    ),
  },
  {
    weight: 3,
    arbitrary: fc
      .array(
        fc.oneof(
          {
            weight: 4,
            arbitrary: fc.constantFrom(
              "v1",
              "chat",
              "completions",
              "models",
              "..",
              ".",
              "%00",
              "%2e%2e",
              "%2F",
              "",
              "é",
              "\u0000",
              "%",
              "~",
              ";x=1",
            ),
          },
          { weight: 1, arbitrary: garbage },
        ),
        { maxLength: 6 },
      )
      .map((segments) => "/" + segments.join("/")),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 20_000 }).map((n) => `/v1/models?${"q".repeat(n)}`) },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 20_000 }).map((n) => `/${"..%2F".repeat(n / 5)}`) },
);

const method = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.constantFrom(
      "GET",
      "POST",
      "PUT",
      "DELETE",
      "PATCH",
      "OPTIONS",
      "HEAD",
      "TRACE",
      "PURGE",
      "CONNECT",
      "SEARCH",
    ),
  },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z]{1,10}$/) },
  { weight: 1, arbitrary: fc.string({ unit: "binary-ascii", maxLength: 8 }) },
);

/**
 * How the body is framed. `truncated` announces more than it sends and then
 * closes its side: an aborted upload, which leaves nobody to answer.
 */
const framing = fc.constantFrom(
  "length",
  "length",
  "length",
  "chunked",
  "none",
  "broken-chunked",
  "short",
  "truncated",
);
type Framing = "length" | "chunked" | "none" | "broken-chunked" | "short" | "truncated";

interface FuzzRequest {
  method: string;
  path: string;
  headers: Array<[string, string]>;
  body: string | Buffer | undefined;
  framing: Framing;
  host: boolean;
}

function encode(r: FuzzRequest): Buffer {
  const headers: Array<[string, string]> = [];
  if (r.host) headers.push(["Host", "127.0.0.1"]);
  headers.push(...r.headers);
  if (!r.headers.some(([n]) => n.trim().toLowerCase() === "connection")) headers.push(["Connection", "close"]);
  const payload =
    r.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body, "utf8");
  let bodyBytes: Buffer = payload;
  switch (r.framing) {
    case "length":
      if (r.body !== undefined) headers.push(["Content-Length", String(payload.length)]);
      break;
    case "chunked": {
      headers.push(["Transfer-Encoding", "chunked"]);
      const parts: Buffer[] = [];
      for (let i = 0; i < payload.length; i += 977) {
        const c = payload.subarray(i, i + 977);
        parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from("\r\n"));
      }
      parts.push(Buffer.from("0\r\n\r\n"));
      bodyBytes = Buffer.concat(parts);
      break;
    }
    case "broken-chunked":
      headers.push(["Transfer-Encoding", "chunked"]);
      bodyBytes = Buffer.concat([Buffer.from("zz\r\n"), payload, Buffer.from("\r\n0\r\n\r\n")]);
      break;
    case "short":
      headers.push(["Content-Length", String(Math.floor(payload.length / 2))]);
      break;
    case "truncated":
      headers.push(["Content-Length", String(payload.length + 1_000)]);
      break;
    case "none":
      break;
  }
  const head = `${r.method} ${r.path} HTTP/1.1\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`;
  return Buffer.concat([Buffer.from(head, "utf8"), bodyBytes]);
}

const hostileRequest: fc.Arbitrary<FuzzRequest> = fc
  .record({
    method,
    path,
    credentials: credentialHeaders,
    other: otherHeaders,
    contentType,
    body: fc.option(body, { nil: undefined, freq: 4 }),
    framing,
    // One request in ten without Host.
    host: fc.nat({ max: 9 }).map((n) => n > 0),
  })
  .map(({ method, path, credentials, other, contentType, body, framing, host }) => ({
    method,
    path,
    headers: [
      ...credentials,
      ...other,
      ...(contentType === undefined ? [] : [["Content-Type", contentType] as [string, string]]),
    ],
    body,
    framing: framing as Framing,
    host,
  }));

/** Mostly a valid credential, so the body gets parsed; sometimes any credentials at all. */
const chatCredentials = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom("authorization", "x-api-key", "api-key"), fc.constantFrom(...VALID_CREDENTIALS))
      .map(([name, value]): Array<[string, string]> => [[name, name === "authorization" ? `Bearer ${value}` : value]]),
  },
  { weight: 1, arbitrary: credentialHeaders },
);

/** Well-framed POSTs to the chat route: the body and the credentials are the attack. */
const hostileChat: fc.Arbitrary<FuzzRequest> = fc
  .record({ credentials: chatCredentials, contentType, body, chunked: fc.boolean() })
  .map(({ credentials, contentType, body, chunked }) => ({
    method: "POST",
    path: "/v1/chat/completions",
    headers: [
      ...credentials,
      ...(contentType === undefined ? [] : [["Content-Type", contentType] as [string, string]]),
    ],
    body,
    framing: chunked ? "chunked" : "length",
    host: true,
  }));

// ---- the run ----------------------------------------------------------------

describe("fuzzing the client API", () => {
  const dir = tempDir();
  const cp = new FakeControlPlane([key.upsert, scoped.upsert], 1, "gwt-fuzz", ORG);
  cp.signingKeys = [signer.message];
  const { logger, lines } = capturedLogger();
  let gw: Gateway;
  let ep: ReturnType<typeof endpoints>;
  let port: number;
  let keysBefore = "";
  const statuses = new Map<number, number>();
  let unanswered = 0;

  const keyCacheState = () =>
    JSON.stringify([
      gw.context.db.db.prepare("SELECT * FROM keys ORDER BY id").all(),
      gw.context.db.db.prepare("SELECT * FROM signing_keys ORDER BY id").all(),
    ]);

  beforeAll(async () => {
    await cp.start();
    gw = createGateway(
      testConfig(dir.path, cp.url, cp.token, {
        // Blocking would turn most runs into 429s before authentication is even tried.
        bruteForce: { enabled: true, maxFailedAttempts: 1_000_000, ttlMs: 60_000 },
        // Believe X-Forwarded-For from loopback, so forged ones are parsed too.
        trustedProxies: ["127.0.0.0/8"],
      }),
      { logger },
    );
    const addr = await gw.start();
    port = addr.port;
    ep = endpoints(addr);
    await eventually(async () => ((await ep.readyz()).status === 200 ? true : undefined));
    expect((await ep.chat(validToken)).status).toBe(200);
    keysBefore = keyCacheState();
  });

  afterAll(async () => {
    await gw?.stop();
    await cp.stop();
    dir.remove();
  });

  async function send(r: FuzzRequest): Promise<void> {
    const wire = encode(r);
    const head = r.method === "HEAD";
    const [res] = await rawResponses(port, wire, 1, {
      head,
      timeoutMs: 5_000,
      endAfterWrite: r.framing === "truncated",
    });
    const context = () =>
      `${r.method} ${JSON.stringify(r.path.slice(0, 80))} (${r.framing}) -> ${res?.status} ${res?.body.slice(0, 200)}`;
    if (res === undefined) {
      // Only an upload the client itself cut short may go unanswered.
      expect(r.framing, `no response: ${context()}`).toBe("truncated");
      unanswered++;
      return;
    }
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    expect(res.status, context()).toBeLessThan(500);
    if (res.status >= 400) {
      expect(res.headers["content-type"], context()).toBe("application/json");
      if (!head) expectErrorBody(res, context);
    } else {
      // Success needs a valid credential somewhere in the request.
      const text = wire.toString("utf8");
      expect(
        VALID_CREDENTIALS.some((c) => text.includes(c)),
        `succeeded without a valid credential: ${context()}`,
      ).toBe(true);
      if (!head && res.headers["content-type"] === "application/json") JSON.parse(res.body);
    }
  }

  function expectErrorBody(res: RawResponse, context: () => string): void {
    let parsed: { error?: { message?: unknown; type?: unknown } } | undefined;
    try {
      parsed = JSON.parse(res.body) as typeof parsed;
    } catch {
      expect.fail(`not JSON: ${context()}`);
    }
    expect(typeof parsed?.error, context()).toBe("object");
    expect(typeof parsed?.error?.message, context()).toBe("string");
    expect(typeof parsed?.error?.type, context()).toBe("string");
  }

  it(`answers ${HOSTILE_HTTP_RUNS} hostile raw HTTP requests with JSON errors, never a 5xx`, async () => {
    await fc.assert(fc.asyncProperty(hostileRequest, send), { numRuns: HOSTILE_HTTP_RUNS, seed: SEED });
  });

  it(`answers ${HOSTILE_BODY_RUNS} hostile chat bodies and credentials with JSON errors, never a 5xx`, async () => {
    await fc.assert(fc.asyncProperty(hostileChat, send), { numRuns: HOSTILE_BODY_RUNS, seed: SEED + 1 });
  });

  it("is still healthy afterwards: /healthz, a valid key in every header, the key cache untouched, nothing leaked", async () => {
    // Runs after the two properties above (vitest keeps file order): each answer class was actually reached.
    for (const status of [200, 400, 401, 403, 404, 405, 413, 414, 431])
      expect(statuses.get(status) ?? 0, `status ${status}`).toBeGreaterThan(0);
    expect(unanswered).toBeLessThan(HOSTILE_HTTP_RUNS / 5);

    expect((await fetch(`${ep.status}/healthz`)).status).toBe(200);
    expect((await ep.readyz()).status).toBe(200);
    const byHeader: Array<Record<string, string>> = [
      { authorization: `Bearer ${key.secret}` },
      { "x-api-key": key.secret },
      { "api-key": key.secret },
    ];
    for (const headers of byHeader) {
      const res = await fetch(`${ep.base}/v1/chat/completions`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: JSON.stringify({ model: "mock-gpt", messages: [{ role: "user", content: "still there?" }] }),
      });
      expect(res.status).toBe(200);
    }

    expect(keyCacheState()).toBe(keysBefore);
    expect(await ep.metrics()).not.toMatch(/tollgate_gateway_requests_total\{[^}]*status="5\d\d"/);
    expect(lines.filter((l) => (l.level as number) >= 50)).toEqual([]);

    await gw.context.logWriter.flush();
    const requestRows = gw.context.db.requestLog.list(100_000);
    expect(requestRows.length).toBeGreaterThan(HOSTILE_BODY_RUNS);
    // Neither the logs nor the database ever hold a presented credential.
    const everything = JSON.stringify([requestRows, gw.context.db.audit.list(100_000), lines]);
    for (const secret of VALID_CREDENTIALS) expect(everything.includes(secret)).toBe(false);
  });
});
