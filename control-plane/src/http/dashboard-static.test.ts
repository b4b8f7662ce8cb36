import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { AppError } from "@tollgate/shared";
import Koa from "koa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveDashboard } from "./dashboard-static.js";

let dir: string;
let server: Server;
let base: string;
const script = `console.log(${JSON.stringify("x".repeat(4000))});`;

function listen(root: string): Promise<{ server: Server; base: string }> {
  const koa = new Koa();
  koa.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      ctx.status = err.status;
      ctx.body = err.toJSON();
    }
  });
  koa.use(serveDashboard({ root }));
  koa.use((ctx) => {
    ctx.body = { passed: ctx.path };
  });
  return new Promise((resolve) => {
    const s = koa.listen(0, "127.0.0.1", () =>
      resolve({ server: s, base: `http://127.0.0.1:${(s.address() as AddressInfo).port}` }),
    );
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tollgate-dash-"));
  mkdirSync(join(dir, "assets"));
  writeFileSync(
    join(dir, "index.html"),
    '<!doctype html><script type="module" src="/dashboard/assets/index-abc123.js"></script>',
  );
  writeFileSync(join(dir, "assets", "index-abc123.js"), script);
  ({ server, base } = await listen(dir));
});

afterAll(() => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("dashboard static files", () => {
  it("serves the app shell at /dashboard and for every client-side route, never cached stale, framing refused", async () => {
    for (const path of ["/dashboard", "/dashboard/", "/dashboard/configuration/api-keys", "/dashboard/audit-log"]) {
      const res = await fetch(base + path);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/html/);
      expect(res.headers.get("cache-control")).toBe("no-cache");
      expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
      expect(await res.text()).toContain("index-abc123.js");
    }
  });

  it("serves hashed assets gzip-compressed with a year-long immutable cache; a missing asset is a 404", async () => {
    const res = await fetch(`${base}/dashboard/assets/index-abc123.js`, { headers: { "accept-encoding": "gzip" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(res.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect(await res.text()).toBe(script); // fetch decodes the gzip it asked for
    const raw = await new Promise<Buffer>((resolve, reject) => {
      import("node:http").then(({ get }) =>
        get(`${base}/dashboard/assets/index-abc123.js`, { headers: { "accept-encoding": "gzip" } }, (r) => {
          expect(r.headers["content-encoding"]).toBe("gzip");
          const chunks: Buffer[] = [];
          r.on("data", (c: Buffer) => chunks.push(c));
          r.on("end", () => resolve(Buffer.concat(chunks)));
        }).on("error", reject),
      );
    });
    expect(raw.length).toBeLessThan(script.length);
    expect(gunzipSync(raw).toString()).toBe(script);

    const missing = await fetch(`${base}/dashboard/assets/index-old999.js`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as any).error.code).toBe("not_found");
  });

  it("refuses writes and leaves other paths to the next middleware", async () => {
    const post = await fetch(`${base}/dashboard/configuration/api-keys`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(((await fetch(`${base}/dashboards`).then((r) => r.json())) as any).passed).toBe("/dashboards");
    expect(((await fetch(`${base}/internal/teams`).then((r) => r.json())) as any).passed).toBe("/internal/teams");
  });

  it("says how to build the dashboard when it is not built", async () => {
    const empty = mkdtempSync(join(tmpdir(), "tollgate-dash-empty-"));
    const other = await listen(empty);
    try {
      const res = await fetch(`${other.base}/dashboard/`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as any).error.message).toContain("pnpm build");
    } finally {
      other.server.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
