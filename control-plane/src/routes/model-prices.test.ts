import { createLogger } from "@tollgate/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createControlPlane, type ControlPlane } from "../index.js";
import { DATASET_VERSION } from "../pricing/default-prices.js";
import { testConfig, TEST_MASTER_KEY } from "../../test/test-config.js";
import { startTestControlPlane, type TestControlPlane } from "../../test/test-control-plane.js";

let test: TestControlPlane;
let base: string;

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + path, {
    method,
    headers: {
      authorization: `Bearer ${TEST_MASTER_KEY}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

const revision = async (orgId: string) => (await call("GET", `/internal/orgs/${orgId}`)).body.revision as number;

beforeAll(async () => {
  test = await startTestControlPlane({ maxBodyBytes: 64 * 1024 });
  base = test.base;
});

afterAll(async () => {
  await test?.stop();
});

describe("/internal/model-prices", () => {
  it("lists the dataset's defaults for openai, anthropic and gemini, filtered by provider and model search", async () => {
    const all = await call("GET", "/internal/model-prices?limit=1000");
    expect(all.status).toBe(200);
    expect(all.body.dataset).toEqual({ name: "@pydantic/genai-prices", version: DATASET_VERSION });
    const providers = new Set(all.body.data.map((p: { provider: string }) => p.provider));
    expect([...providers].sort()).toEqual(["anthropic", "gemini", "openai"]);

    const found = await call("GET", "/internal/model-prices?provider=openai&search=GPT-4O-MINI");
    expect(found.body.data.length).toBeGreaterThan(0);
    for (const p of found.body.data) {
      expect(p.provider).toBe("openai");
      expect(p.model.toLowerCase()).toContain("gpt-4o-mini");
    }
    expect(found.body.data.find((p: { model: string }) => p.model === "gpt-4o-mini")).toMatchObject({
      input_usd_per_mtok: 0.15,
      output_usd_per_mtok: 0.6,
      cache_read_usd_per_mtok: 0.075,
      source: "default",
    });
    // A search is a substring, not a pattern.
    expect((await call("GET", "/internal/model-prices?search=gpt_4o")).body.data).toEqual([]);
  });

  it("pages through the whole table with next_cursor, without repeats", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { data: Array<{ provider: string; model: string }>; next_cursor: string | null } } =
        await call("GET", `/internal/model-prices?provider=anthropic&limit=7${cursor ? `&cursor=${cursor}` : ""}`);
      seen.push(...page.body.data.map((p) => `${p.provider}/${p.model}`));
      cursor = page.body.next_cursor;
    } while (cursor);
    const all = (await call("GET", "/internal/model-prices?provider=anthropic&limit=1000")).body.data.map(
      (p: { provider: string; model: string }) => `${p.provider}/${p.model}`,
    );
    expect(seen).toEqual(all);
    expect(new Set(seen).size).toBe(seen.length);
    expect((await call("GET", "/internal/model-prices?cursor=garbage")).body.error.field).toBe("cursor");
  });

  it("overrides a default, shows both, and DELETE restores the default; all audited and synced", async () => {
    const orgId = (await call("GET", "/internal/orgs")).body.data[0].id as string;
    const before = await revision(orgId);
    const put = await call("PUT", "/internal/model-prices/openai/gpt-4o", {
      input_usd_per_mtok: 1,
      output_usd_per_mtok: 4,
      cache_read_usd_per_mtok: 0.5,
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({
      provider: "openai",
      model: "gpt-4o",
      input_usd_per_mtok: 1,
      output_usd_per_mtok: 4,
      cache_read_usd_per_mtok: 0.5,
      cache_write_usd_per_mtok: null,
      source: "override",
      default: { input_usd_per_mtok: 2.5, output_usd_per_mtok: 10 },
    });
    expect(put.headers.get("x-tollgate-revision")).toBe(String(before + 1));
    expect((await call("GET", "/internal/model-prices/openai/gpt-4o")).body).toMatchObject({
      source: "override",
      input_usd_per_mtok: 1,
    });

    const del = await call("DELETE", "/internal/model-prices/openai/gpt-4o");
    expect(del.status).toBe(200);
    expect(del.body.restored_default).toMatchObject({
      source: "default",
      input_usd_per_mtok: 2.5,
      output_usd_per_mtok: 10,
    });
    expect((await call("GET", "/internal/model-prices/openai/gpt-4o")).body).toMatchObject({
      source: "default",
      input_usd_per_mtok: 2.5,
    });
    expect(await revision(orgId)).toBe(before + 2);
    // Nothing left to delete: the default is not an override.
    const again = await call("DELETE", "/internal/model-prices/openai/gpt-4o");
    expect(again.status).toBe(404);
    expect(again.body.error.message).toContain("no override");

    const audit = await call("GET", `/internal/audit-logs?target_id=${encodeURIComponent("openai/gpt-4o")}`);
    expect(audit.body.data.map((a: { action: string }) => a.action)).toEqual([
      "model_price.delete_override",
      "model_price.override",
    ]);
    const [deleted, overridden] = audit.body.data;
    expect(overridden.before).toMatchObject({ source: "default", input_usd_per_mtok: 2.5 });
    expect(overridden.after).toMatchObject({ source: "override", input_usd_per_mtok: 1 });
    expect(deleted.after).toMatchObject({ source: "default", input_usd_per_mtok: 2.5 });
  });

  it("creates prices for models the dataset lacks, with '/', ':' and '.' in the name, and DELETE removes them", async () => {
    const created = await call("PUT", "/internal/model-prices/openai/acme%2Fft:gpt-4.1:v2", {
      input_usd_per_mtok: 0,
      output_usd_per_mtok: 12.5,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ model: "acme/ft:gpt-4.1:v2", source: "override", default: null });
    // The same model by raw slashes.
    expect((await call("GET", "/internal/model-prices/openai/acme/ft:gpt-4.1:v2")).body.output_usd_per_mtok).toBe(12.5);
    expect(
      (await call("PUT", "/internal/model-prices/*/llama-*", { input_usd_per_mtok: 0.2, output_usd_per_mtok: 0.2 }))
        .status,
    ).toBe(201);
    expect(
      (await call("GET", "/internal/model-prices?provider=*")).body.data.map((p: { model: string }) => p.model),
    ).toEqual(["llama-*"]);

    const del = await call("DELETE", "/internal/model-prices/openai/acme/ft:gpt-4.1:v2");
    expect(del.body).toMatchObject({ deleted: true, restored_default: null });
    expect((await call("GET", "/internal/model-prices/openai/acme/ft:gpt-4.1:v2")).status).toBe(404);
    expect((await call("DELETE", "/internal/model-prices/openai/acme/ft:gpt-4.1:v2")).status).toBe(404);
    const audit = await call(
      "GET",
      `/internal/audit-logs?target_id=${encodeURIComponent("openai/acme/ft:gpt-4.1:v2")}`,
    );
    expect(audit.body.data.map((a: { action: string }) => a.action)).toEqual([
      "model_price.delete_override",
      "model_price.override",
    ]);
    expect(audit.body.data[0].after).toBeNull();
  });

  it("answers bad input with a 400 naming the field, and changes nothing", async () => {
    const orgId = (await call("GET", "/internal/orgs")).body.data[0].id as string;
    const before = await revision(orgId);
    const good = { input_usd_per_mtok: 1, output_usd_per_mtok: 2 };
    const cases: Array<[string, unknown, string]> = [
      ["/openai/gpt-4o", { output_usd_per_mtok: 2 }, "input_usd_per_mtok"],
      ["/openai/gpt-4o", { ...good, input_usd_per_mtok: -1 }, "input_usd_per_mtok"],
      ["/openai/gpt-4o", { ...good, output_usd_per_mtok: "2" }, "output_usd_per_mtok"],
      ["/openai/gpt-4o", '{"input_usd_per_mtok": 1, "output_usd_per_mtok": 1e400}', "output_usd_per_mtok"],
      ["/openai/gpt-4o", { ...good, output_usd_per_mtok: null }, "output_usd_per_mtok"],
      ["/openai/gpt-4o", { ...good, cache_read_usd_per_mtok: -0.1 }, "cache_read_usd_per_mtok"],
      ["/openai/gpt-4o", { ...good, cache_write_usd_per_mtok: true }, "cache_write_usd_per_mtok"],
      ["/openai/gpt-4o", { ...good, currency: "EUR" }, "currency"],
      ["/OpenAI/gpt-4o", good, "provider"],
      ["/openai/gpt%204o", good, "model"],
      ["/openai/gpt-*-mini", good, "model"],
      ["/openai/" + "m".repeat(201), good, "model"],
    ];
    for (const [path, body, field] of cases) {
      const res = await call("PUT", "/internal/model-prices" + path, body);
      expect(res.status, `${path} ${JSON.stringify(body)}`).toBe(400);
      expect(res.body.error.field).toBe(field);
      expect(res.body.error.message).toContain(field);
    }
    expect((await call("GET", "/internal/model-prices?limit=0")).status).toBe(400);
    expect((await call("GET", "/internal/model-prices/openai/gpt%204o")).body.error.field).toBe("model");
    expect(await revision(orgId)).toBe(before);
    expect((await call("GET", "/internal/model-prices/openai/gpt-4o")).body.source).toBe("default");
  });

  it("needs the master key", async () => {
    expect((await call("GET", "/internal/model-prices", undefined, { authorization: "Bearer nope" })).status).toBe(401);
    expect(
      (
        await call(
          "PUT",
          "/internal/model-prices/openai/gpt-4o",
          { input_usd_per_mtok: 1, output_usd_per_mtok: 1 },
          { authorization: "" },
        )
      ).status,
    ).toBe(401);
  });

  it("keeps organizations apart, and seeds a new organization with the defaults", async () => {
    const org = await call("POST", "/internal/orgs", { name: "prices-acme" });
    const acme = { "tollgate-organization": org.body.id as string };
    expect((await call("GET", "/internal/model-prices/openai/gpt-4o", undefined, acme)).body).toMatchObject({
      source: "default",
      input_usd_per_mtok: 2.5,
    });
    await call("PUT", "/internal/model-prices/openai/gpt-4o", { input_usd_per_mtok: 9, output_usd_per_mtok: 9 }, acme);
    expect((await call("GET", "/internal/model-prices/openai/gpt-4o")).body.source).toBe("default");
    expect((await call("GET", "/internal/model-prices/openai/gpt-4o", undefined, acme)).body.source).toBe("override");
  });
});

describe("default price seeding across restarts", () => {
  it("writes nothing on an idempotent restart, keeps overrides, and repairs a stale default", async () => {
    const databaseUrl = process.env.DATABASE_URL || undefined;
    const schema = databaseUrl ? `t_${Math.random().toString(36).slice(2, 10)}` : "public";
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dataDir = mkdtempSync(join(tmpdir(), "tollgate-cp-prices-"));
    const start = async () => {
      const cp = createControlPlane(testConfig({ databaseUrl, databaseSchema: schema, dataDir }), {
        logger: createLogger({ name: "t", level: "silent" }),
      });
      base = `http://127.0.0.1:${(await cp.start()).port}`;
      return cp;
    };
    let cp: ControlPlane | undefined;
    try {
      cp = await start();
      const orgId = cp.context!.defaultOrgId;
      const seeded = await revision(orgId);
      expect(seeded).toBeGreaterThan(300);
      await call("PUT", "/internal/model-prices/anthropic/claude-sonnet-4", {
        input_usd_per_mtok: 1,
        output_usd_per_mtok: 2,
      });
      const seeds = async () =>
        (await call("GET", "/internal/audit-logs?action=model_price.seed")).body.data.length as number;
      expect(await seeds()).toBe(1);
      await cp.stop();

      cp = await start();
      expect(await revision(orgId)).toBe(seeded + 1); // only the override's change
      expect(await seeds()).toBe(1);
      expect((await call("GET", "/internal/model-prices/anthropic/claude-sonnet-4")).body).toMatchObject({
        source: "override",
        input_usd_per_mtok: 1,
      });

      // A default written by an older dataset, and one the dataset no longer has.
      await cp
        .context!.db.updateTable("model_prices")
        .set({ input_usd_per_mtok: 123 })
        .where("org_id", "=", orgId)
        .where("model", "=", "gpt-4o")
        .where("provider", "=", "openai")
        .execute();
      await cp
        .context!.db.insertInto("model_prices")
        .values({
          org_id: orgId,
          provider: "openai",
          model: "gpt-retired",
          input_usd_per_mtok: 1,
          output_usd_per_mtok: 1,
          cache_read_usd_per_mtok: null,
          cache_write_usd_per_mtok: null,
          source: "default",
        })
        .execute();
      await cp.stop();

      cp = await start();
      expect(await revision(orgId)).toBe(seeded + 3);
      expect((await call("GET", "/internal/model-prices/openai/gpt-4o")).body.input_usd_per_mtok).toBe(2.5);
      expect((await call("GET", "/internal/model-prices/openai/gpt-retired")).status).toBe(404);
      const seed = (await call("GET", "/internal/audit-logs?action=model_price.seed")).body.data[0];
      expect(seed).toMatchObject({ actor: "system", after: { added: 0, updated: 1, removed: 1 } });
    } finally {
      await cp?.stop();
      base = test.base;
      if (databaseUrl) {
        const pg = (await import("pg")).default;
        const client = new pg.Client({ connectionString: databaseUrl });
        await client.connect();
        await client.query(`drop schema if exists ${schema} cascade`);
        await client.end();
      }
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
