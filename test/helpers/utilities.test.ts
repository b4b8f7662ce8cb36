import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabase } from "@tollgate/testkit";
import { adminClient, createTempDir, getFreePort, repoRoot, waitFor } from "@tollgate/testkit";

describe("test utilities", () => {
  let server: Server;
  let url: string;
  const seen: { method: string; url: string; auth: string | undefined; body: string }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
        if (req.url === "/empty") {
          res.writeHead(204).end();
        } else if (req.url === "/text") {
          res.writeHead(200, { "content-type": "text/plain" }).end("plain");
        } else {
          res
            .writeHead(201, { "content-type": "application/json" })
            .end(JSON.stringify({ echoed: body ? JSON.parse(body) : null }));
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("repoRoot points at the workspace root", () => {
    expect(existsSync(join(repoRoot, "pnpm-workspace.yaml"))).toBe(true);
  });

  it("adminClient sends the master key and parses JSON, text and empty bodies", async () => {
    const admin = adminClient(url, "mk-0123456789abcdef0123456789abcdef");
    const created = await admin.post("/internal/teams", { name: "a" });
    expect(created).toMatchObject({ status: 201, body: { echoed: { name: "a" } } });
    expect(seen.at(-1)).toMatchObject({
      method: "POST",
      url: "/internal/teams",
      auth: "Bearer mk-0123456789abcdef0123456789abcdef",
    });
    expect((await admin.delete("/empty")).body).toBeNull();
    expect((await admin.get("/text")).body).toBe("plain");
    await admin.patch("internal/x", { a: 1 });
    expect(seen.at(-1)).toMatchObject({ method: "PATCH", url: "/internal/x" });
    await admin.request("GET", "/y", undefined, { authorization: "Bearer other" });
    expect(seen.at(-1)?.auth).toBe("Bearer other");
  });

  it("waitFor returns the first truthy value and explains a timeout", async () => {
    let n = 0;
    await expect(waitFor(() => (++n >= 3 ? n : undefined), { intervalMs: 5 })).resolves.toBe(3);
    await expect(
      waitFor(
        () => {
          throw new Error("not yet");
        },
        { timeoutMs: 50, intervalMs: 10, message: "thing" },
      ),
    ).rejects.toThrow(/thing.*not yet/);
  });

  it("getFreePort and createTempDir", async () => {
    const port = await getFreePort();
    expect(port).toBeGreaterThan(0);
    const dir = await createTempDir("util-");
    await writeFile(join(dir.path, "f"), "x");
    expect(existsSync(join(dir.path, "f"))).toBe(true);
    await dir.cleanup();
    expect(existsSync(dir.path)).toBe(false);
  });

  it.runIf(process.env.DATABASE_URL)("testDatabase gives a unique schema and drops it", async () => {
    const db = testDatabase()!;
    expect(db.schema).toMatch(/^t_[0-9a-f]{12}$/);
    expect(testDatabase()!.schema).not.toBe(db.schema);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query(`CREATE SCHEMA "${db.schema}"`);
      await client.query(`CREATE TABLE "${db.schema}".t (id int)`);
      await db.drop();
      await db.drop();
      const r = await client.query("SELECT 1 FROM information_schema.schemata WHERE schema_name = $1", [db.schema]);
      expect(r.rowCount).toBe(0);
    } finally {
      await client.end();
    }
  });
});
