import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, generateApiKey } from "@tollgate/shared";
import {
  AUTH_DISABLED_WARNING,
  createGateway,
  startAuthDisabledWarnings,
  type Gateway,
  type GatewayConfig,
} from "../index.js";
import {
  capturedLogger,
  endpoints,
  eventually,
  FakeControlPlane,
  makeKey,
  rawRequest,
  rawResponses,
  tempDir,
  wire,
} from "@tollgate/testkit";
import { testConfig } from "../../test/test-config.js";
import { jsonDepthExceeds } from "./read-body.js";

// Response bodies are asserted field by field; their static type adds nothing.
type Json = any;

const CHAT_BODY = JSON.stringify({ model: "mock-gpt", messages: [{ role: "user", content: "hi" }] });

/** A started gateway against a fake control plane holding `keys`. */
async function startGateway(
  overrides: Partial<GatewayConfig>,
  keys = [makeKey()],
  options: { controlPlane?: boolean } = {},
) {
  const dir = tempDir();
  const cp = new FakeControlPlane(
    keys.map((k) => k.upsert),
    1,
  );
  const useCp = options.controlPlane !== false;
  if (useCp) await cp.start();
  const { logger, lines } = capturedLogger();
  // Port 1 on loopback refuses at once: a control plane that is down.
  const gw = createGateway(testConfig(dir.path, useCp ? cp.url : "http://127.0.0.1:1", cp.token, overrides), {
    logger,
  });
  const addr = await gw.start();
  const ep = endpoints(addr);
  if (useCp) await eventually(async () => ((await ep.readyz()).status === 200 ? true : undefined));
  return {
    gw,
    ep,
    lines,
    port: addr.port,
    post: (path: string, headers: Record<string, string>, body = CHAT_BODY) =>
      fetch(`${ep.base}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body }),
    get: (path: string, headers: Record<string, string> = {}) => fetch(`${ep.base}${path}`, { headers }),
    requestRow: async (res: Response) => {
      const id = res.headers.get("x-request-id");
      return eventually(() => gw.context.db.requestLog.list().find((r) => r.requestId === id));
    },
    async stop() {
      await gw.stop();
      if (useCp) await cp.stop();
      dir.remove();
    },
  };
}

type Started = Awaited<ReturnType<typeof startGateway>>;

describe("credential headers", () => {
  const key = makeKey();
  const other = makeKey();
  let g: Started;
  beforeAll(async () => {
    g = await startGateway({ bruteForce: { enabled: true, maxFailedAttempts: 1000, ttlMs: 60_000 } }, [key, other]);
  });
  afterAll(() => g?.stop());

  it("accepts Authorization: Bearer, x-api-key and api-key on every route", async () => {
    const byHeader: Array<Record<string, string>> = [
      { authorization: `Bearer ${key.secret}` },
      { "x-api-key": key.secret },
      { "api-key": key.secret },
    ];
    for (const headers of byHeader) {
      const chat = await g.post("/v1/chat/completions", headers);
      expect(chat.status).toBe(200);
      expect((await g.requestRow(chat)).keyId).toBe(key.upsert.id);
      expect((await g.get("/v1/models", headers)).status).toBe(200);
    }
  });

  it("uses the first credential by precedence when several are sent, and says so when it fails", async () => {
    const first = await g.post("/v1/chat/completions", {
      authorization: `Bearer ${key.secret}`,
      "x-api-key": other.secret,
      "api-key": "junk",
    });
    expect((await g.requestRow(first)).keyId).toBe(key.upsert.id);
    const second = await g.post("/v1/chat/completions", { "x-api-key": other.secret, "api-key": key.secret });
    expect((await g.requestRow(second)).keyId).toBe(other.upsert.id);

    const wrong = await g.post("/v1/chat/completions", {
      authorization: `Bearer ${generateApiKey().key}`,
      "x-api-key": key.secret,
    });
    expect(wrong.status).toBe(401);
    const body: Json = await wrong.json();
    expect(body.error).toMatchObject({ type: "invalid_request_error", code: "invalid_api_key" });
    expect(body.error.message).toContain("'x-api-key' was ignored");
    const audit = await eventually(() =>
      g.gw.context.db.audit
        .list()
        .find(
          (r) =>
            r.event === "auth_denied" && (r.detail as { ignored_headers?: string[] }).ignored_headers !== undefined,
        ),
    );
    expect(audit.detail).toMatchObject({
      reason: "unknown",
      credential_header: "authorization",
      ignored_headers: ["x-api-key"],
    });
    expect(JSON.stringify(audit.detail)).not.toContain(key.secret);
  });

  it("checks format and checksum before any lookup for x-api-key and api-key, counted like Authorization", async () => {
    const s = key.secret;
    const typo = s.slice(0, 10) + (s[10] === "a" ? "b" : "a") + s.slice(11);
    for (const header of ["x-api-key", "api-key"]) {
      const malformed = await g.post("/v1/chat/completions", { [header]: "sk-ant-api03-secret-value" });
      expect(malformed.status).toBe(401);
      const body: Json = await malformed.json();
      expect(body.error.message).toContain(`in the '${header}' header`);
      expect(body.error.message).not.toContain("secret-value");
      expect((await g.post("/v1/chat/completions", { [header]: typo })).status).toBe(401);
    }
    const metrics = await g.ep.metrics();
    expect(metrics).toMatch(/tollgate_gateway_auth_failures_total\{reason="malformed"\} [2-9]/);
    expect(metrics).toMatch(/tollgate_gateway_auth_failures_total\{reason="bad_checksum"\} 2/);
  });
});

describe("AUTH_BYPASS_PATHS", () => {
  const key = makeKey();
  let g: Started;
  beforeAll(async () => {
    g = await startGateway({ authBypassPaths: ["/v1/models"] }, [key]);
  });
  afterAll(() => g?.stop());

  it("serves a listed path without a key and ignores one that is sent; everything else stays authenticated", async () => {
    const open = await g.get("/v1/models");
    expect(open.status).toBe(200);
    expect(((await open.json()) as Json).data[0].id).toBe("mock-gpt");
    expect((await g.requestRow(open)).keyId).toBeNull();
    expect((await g.get("/v1/models/", { "x-api-key": "not-even-a-key" })).status).toBe(200);

    const chat = await g.post("/v1/chat/completions", {});
    expect(chat.status).toBe(401);
    expect((await g.post("/v1/chat/completions", { authorization: `Bearer ${key.secret}` })).status).toBe(200);
    // Exact paths only: a path below a listed one stays authenticated, unknown paths 404, wrong methods 405.
    expect((await g.get("/v1/models/x")).status).toBe(401);
    expect((await g.get("/v1/models-x")).status).toBe(404);
    expect((await g.post("/v1/models", {})).status).toBe(405);
  });
});

describe("DISABLE_AUTH", () => {
  it("serves every request as dev-no-auth with no scopes, warns loudly, and shows it in /metrics and /readyz", async () => {
    // No control plane at all: without keys to trust, readiness does not gate requests.
    const g = await startGateway({ disableAuth: true }, [], { controlPlane: false });
    try {
      const warnings = g.lines.filter((l) => l.msg === AUTH_DISABLED_WARNING);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.level).toBe(40);

      const chat = await g.post("/v1/chat/completions", {});
      expect(chat.status).toBe(200);
      const row = await g.requestRow(chat);
      expect(row).toMatchObject({ keyId: "dev-no-auth", status: 200 });
      // No key, no owner: nothing is counted against quotas or reported as usage.
      await g.gw.context.logWriter.flush();
      expect(g.gw.context.quota.outbox.backlog).toBe(0);
      expect(g.gw.context.quota.manager.size).toBe(0);
      // Any credential, even garbage, is ignored rather than refused.
      expect((await g.get("/v1/models", { authorization: "Bearer nonsense" })).status).toBe(200);
      // Routing and body checks still apply.
      expect((await g.get("/v1/nope")).status).toBe(404);
      expect((await g.post("/v1/chat/completions", {}, "{")).status).toBe(400);

      expect(await g.ep.metrics()).toMatch(/^tollgate_gateway_auth_disabled 1$/m);
      const ready = await g.ep.readyz();
      expect(ready.body.auth_disabled).toBe(true);
      await eventually(() => g.gw.context.db.audit.list().find((r) => r.event === "auth_disabled"));
    } finally {
      await g.stop();
    }
  });

  it("is off by default: gauge 0, auth_disabled false, no warning", async () => {
    const g = await startGateway({});
    try {
      expect(await g.ep.metrics()).toMatch(/^tollgate_gateway_auth_disabled 0$/m);
      expect((await g.ep.readyz()).body.auth_disabled).toBe(false);
      expect(g.lines.some((l) => l.msg === AUTH_DISABLED_WARNING)).toBe(false);
      expect((await g.post("/v1/chat/completions", {})).status).toBe(401);
    } finally {
      await g.stop();
    }
  });

  it("repeats the warning on its interval until stopped", async () => {
    const { logger, lines } = capturedLogger();
    const stop = startAuthDisabledWarnings(logger, 8080, 15);
    await eventually(() => (lines.filter((l) => l.msg === AUTH_DISABLED_WARNING).length >= 3 ? true : undefined));
    stop();
    const n = lines.length;
    await new Promise((r) => setTimeout(r, 60));
    expect(lines.length).toBe(n);
    expect(lines[0]).toMatchObject({ level: 40, disableAuth: true, port: 8080 });
  });
});

describe("input limits and malformed HTTP", () => {
  const key = makeKey();
  let g: Started;
  beforeAll(async () => {
    g = await startGateway({ maxHeaderBytes: 4096 }, [key]);
  });
  afterAll(() => g?.stop());

  const expectOpenAiError = (r: { status: number; body: string } | null, status: number, code: string) => {
    expect(r).not.toBeNull();
    expect(r!.status).toBe(status);
    const body: Json = JSON.parse(r!.body);
    expect(body.error).toMatchObject({ type: "invalid_request_error", code });
    expect(typeof body.error.message).toBe("string");
    return body.error.message as string;
  };

  it("answers 408 in JSON to a request whose body does not arrive within REQUEST_TIMEOUT, and closes the connection", async () => {
    const key = makeKey();
    const g = await startGateway({ requestTimeoutMs: 1_000 }, [key]);
    try {
      const started = Date.now();
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(g.port, "127.0.0.1", () => {
          // Headers and 3 of the 100 announced bytes, then nothing: a slow-loris body.
          socket.write(
            `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key.secret}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"m`,
          );
        });
        let got = "";
        socket.on("data", (d: Buffer) => (got += d.toString()));
        socket.on("close", () => resolve(got));
        socket.on("error", reject);
        setTimeout(() => reject(new Error(`no answer within 10 s: ${got}`)), 10_000).unref();
      });
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      const body = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as Json;
      expect(body.error.code).toBe("request_timeout");
      expect(body.error.message).toContain("REQUEST_TIMEOUT");
      expect(answer).not.toContain(key.secret);
      expect(await g.ep.metrics()).toMatch(/tollgate_gateway_rejected_requests_total\{reason="request_timeout"\} 1/);
      // The gateway still serves.
      expect((await g.post("/v1/chat/completions", { authorization: `Bearer ${makeKey().secret}` })).status).toBe(401);
    } finally {
      await g.gw.stop();
    }
  });

  it("answers 414 for a URL over 8 KiB and 431 for headers over MAX_HEADER_BYTES", async () => {
    const big = await startGateway({}, [key]);
    try {
      const long = await rawRequest(big.port, wire("GET", `/v1/models?${"a".repeat(9000)}`));
      expect(expectOpenAiError(long, 414, "url_too_long")).toContain("8192 bytes");
      expect((await big.get(`/v1/models?${"a".repeat(8000)}`, { "x-api-key": key.secret })).status).toBe(200);
    } finally {
      await big.stop();
    }
    const headers = await rawRequest(g.port, wire("GET", "/v1/models", [["x-filler", "a".repeat(5000)]]));
    expect(expectOpenAiError(headers, 431, "request_header_fields_too_large")).toContain(
      "4096 bytes (MAX_HEADER_BYTES)",
    );
    expect(await g.ep.metrics()).toMatch(/tollgate_gateway_rejected_requests_total\{reason="header_too_large"\} 1/);
  });

  it("refuses JSON nested deeper than 64 levels with 400 json_too_deep, and accepts 64", async () => {
    const nest = (n: number) =>
      `{"model":"mock-gpt","messages":[{"role":"user","content":"hi"}],"x":${"[".repeat(n - 1)}${"]".repeat(n - 1)}}`;
    const auth = { authorization: `Bearer ${key.secret}` };
    expect((await g.post("/v1/chat/completions", auth, nest(64))).status).toBe(200);
    const deep = await g.post("/v1/chat/completions", auth, nest(65));
    expect(deep.status).toBe(400);
    const body: Json = await deep.json();
    expect(body.error).toMatchObject({ type: "invalid_request_error", code: "json_too_deep" });
    expect(body.error.message).toContain("64 levels");
    // Hidden under a key that a later duplicate overwrites, it is still the client's bytes that go upstream.
    const hidden = await g.post(
      "/v1/chat/completions",
      auth,
      `{"model":"mock-gpt","messages":[{"role":"user","content":"hi","x":${"[".repeat(100)}${"]".repeat(100)},"x":1}]}`,
    );
    expect(hidden.status).toBe(400);
    expect(((await hidden.json()) as Json).error.code).toBe("json_too_deep");
    expect(await g.ep.metrics()).toMatch(/tollgate_gateway_rejected_requests_total\{reason="json_too_deep"\} 2/);
  });

  it("answers unparsable requests with a JSON 400 and keeps serving", async () => {
    const cases: Array<[string, string | Buffer]> = [
      ["control byte in a header value", "GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Api-Key: ab\x01cd\r\n\r\n"],
      ["space in a header name", "GET /v1/models HTTP/1.1\r\nHost: x\r\nX Api Key: abcd\r\n\r\n"],
      ["unknown method", "BREW /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"],
      [
        "broken chunked body",
        wire(
          "POST",
          "/v1/chat/completions",
          [
            ["x-api-key", key.secret],
            ["transfer-encoding", "chunked"],
          ],
          "zz\r\n{}\r\n0\r\n\r\n",
        ),
      ],
      [
        "Content-Length with Transfer-Encoding",
        wire(
          "POST",
          "/v1/chat/completions",
          [
            ["content-length", "5"],
            ["transfer-encoding", "chunked"],
          ],
          "0\r\n\r\n",
        ),
      ],
      ["NUL in the path", "GET /v1/\x00models HTTP/1.1\r\nHost: x\r\n\r\n"],
      ["not HTTP", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"],
    ];
    for (const [, data] of cases) expectOpenAiError(await rawRequest(g.port, data), 400, "malformed_http_request");
    expectOpenAiError(await rawRequest(g.port, "GET /v1/models HTTP/1.1\r\n\r\n"), 400, "missing_host_header");
    expectOpenAiError(
      await rawRequest(g.port, "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n"),
      405,
      "method_not_allowed",
    );
    expectOpenAiError(
      await rawRequest(g.port, wire("POST", "/v1/chat/completions", [["expect", "200-ok"]], "{}")),
      417,
      "expectation_failed",
    );
    expectOpenAiError(await rawRequest(g.port, wire("DELETE", "/v1/models")), 405, "method_not_allowed");
    expectOpenAiError(await rawRequest(g.port, wire("GET", "/../etc/passwd")), 404, "unknown_url");
    expect((await fetch(`${g.ep.status}/healthz`)).status).toBe(200);
    expect((await g.get("/v1/models", { "x-api-key": key.secret })).status).toBe(200);
  });

  it("answers a pipelined request in full before refusing a malformed one behind it", async () => {
    const good = wire("GET", "/v1/models", [
      ["x-api-key", key.secret],
      ["connection", "keep-alive"],
    ]);
    const [first, second, third] = await rawResponses(
      g.port,
      [good, "BREW /v1/models HTTP/1.1\r\nHost: x\r\n\r\n", good],
      3,
    );
    expect(first?.status).toBe(200);
    expect(JSON.parse(first!.body).data[0].id).toBe("mock-gpt");
    expectOpenAiError(second ?? null, 400, "malformed_http_request");
    // Nothing is parsed after the broken request.
    expect(third).toBeUndefined();
  });

  it("survives an upload aborted halfway, and logs it as the client's doing", async () => {
    const requestId = await new Promise<string>((resolve, reject) => {
      const socket = connect(g.port, "127.0.0.1", () => {
        socket.write(
          "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
            `Authorization: Bearer ${key.secret}\r\nContent-Length: 1000\r\n\r\n{"model":"mock-gpt","messa`,
        );
        // Let the gateway authenticate and start reading the body, then vanish.
        setTimeout(() => {
          socket.destroy();
          resolve("");
        }, 100);
      });
      socket.on("error", reject);
    });
    expect(requestId).toBe("");
    const row = await eventually(() =>
      g.gw.context.db.requestLog
        .list()
        .find((r) => r.keyId === key.upsert.id && (r.error === "incomplete_body" || r.error === "client_closed")),
    );
    expect(row.status).toBeGreaterThanOrEqual(400);
    expect(await g.ep.metrics()).not.toMatch(/status="5\d\d"/);
    expect((await g.get("/v1/models", { "x-api-key": key.secret })).status).toBe(200);
  });
});

describe("jsonDepthExceeds", () => {
  const depth = (s: string, limit: number) => jsonDepthExceeds(Buffer.from(s, "utf8"), limit);

  it("counts arrays and objects, not brackets inside strings or escaped quotes", () => {
    expect(depth("[[[]]]", 3)).toBe(false);
    expect(depth("[[[[]]]]", 3)).toBe(true);
    expect(depth('{"a":{"b":[1,{"c":2}]}}', 4)).toBe(false);
    expect(depth('{"a":{"b":[1,{"c":2}]}}', 3)).toBe(true);
    expect(depth(`["${"[".repeat(100)}"]`, 1)).toBe(false);
    expect(depth(`["\\"${"{".repeat(10)}\\\\", [[]]]`, 3)).toBe(false);
    expect(depth(`["\\\\"${"[".repeat(5)}`, 3)).toBe(true);
    expect(depth(`["é[ü", {"ключ": "[[["}]`, 2)).toBe(false);
    // Siblings do not add up.
    expect(depth("[" + "[],".repeat(1000) + "[]]", 2)).toBe(false);
  });
});
