import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabase } from "@tollgate/testkit";
import {
  chatStatus,
  createTempDir,
  getFreePort,
  startControlPlane,
  startGateway,
  waitFor,
  type ControlPlaneProcess,
  type GatewayProcess,
  type TempDir,
} from "@tollgate/testkit";

const MASTER_KEY = "sk-faults-master-key-0123456789abcdefghijk";

/** Revisions a gateway applied from deltas, in order, from its local audit log. */
function appliedDeltaRevisions(dbFile: string): number[] {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare(
        "select revision from audit_log where event in ('key_upsert','key_delete') and json_extract(detail, '$.source') is null order by id",
      )
      .all() as Array<{ revision: number }>;
    return rows.map((r) => r.revision);
  } finally {
    db.close();
  }
}

function cachedKeyIds(dbFile: string): string[] {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("select id from keys order by id").all() as Array<{ id: string }>).map((r) => r.id);
  } finally {
    db.close();
  }
}

describe("control plane killed -9 mid-stream", () => {
  const db = testDatabase("kill9");
  let tmp: TempDir;
  let cp: ControlPlaneProcess;
  let grpcPort: number;
  let token: string;
  let userId: string;
  const gateways: GatewayProcess[] = [];

  const startCp = async () => {
    cp = await startControlPlane({
      masterKey: MASTER_KEY,
      dataDir: join(tmp.path, "cp"),
      grpcPort,
      ...(db ? { databaseUrl: db.url, databaseSchema: db.schema } : {}),
    });
  };

  beforeAll(async () => {
    tmp = await createTempDir("kill9-");
    grpcPort = await getFreePort();
    await startCp();
    token = (await cp.admin.post("/internal/gateway-tokens", { name: "kill9" })).body.token;
    userId = (await cp.admin.post("/internal/users", { external_id: "alice@example.com" })).body.id;
    await cp.admin.post("/internal/api-keys", { name: "seed", user_id: userId });
    for (const name of ["gw-a", "gw-b"]) {
      gateways.push(
        await startGateway({
          controlPlaneUrl: `http://127.0.0.1:${grpcPort}`,
          token,
          name,
          dataDir: join(tmp.path, name),
        }),
      );
    }
    await Promise.all(gateways.map((g) => g.waitForReady(30_000)));
  });

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await cp?.stop();
    await db?.drop();
    await tmp?.cleanup();
  });

  it("gateways resume after the restart with no lost and no repeated change", async () => {
    // A burst of writes, with the control plane killed while they stream out.
    const created: Array<{ id: string; key: string }> = [];
    const burst = Array.from({ length: 40 }, async (_, i) => {
      await new Promise((r) => setTimeout(r, i * 5));
      try {
        const res = await cp.admin.post("/internal/api-keys", { name: `burst-${i}`, user_id: userId });
        if (res.status === 201) created.push(res.body);
      } catch {
        // The connection died with the process: this write may or may not have committed.
      }
    });
    await waitFor(() => created.length >= 10, { timeoutMs: 10_000, intervalMs: 1 });
    await cp.kill9();
    await Promise.all(burst);
    expect(created.length).toBeGreaterThanOrEqual(10);

    // Static stability: both keep serving what they had while the control plane is gone.
    for (const gw of gateways) expect(gw.running).toBe(true);

    await startCp();
    const after = await cp.admin.post("/internal/api-keys", { name: "after-restart", user_id: userId });
    expect(after.status).toBe(201);
    created.push(after.body);

    // Everything the control plane committed (acknowledged to the admin or not) reaches both.
    const committed = (await cp.admin.get("/internal/api-keys?limit=1000")).body.data
      .map((k: { id: string }) => k.id)
      .sort();
    for (const gw of gateways) {
      const file = join(tmp.path, gw === gateways[0] ? "gw-a" : "gw-b", "gateway.db");
      await waitFor(() => JSON.stringify(cachedKeyIds(file)) === JSON.stringify(committed), {
        timeoutMs: 30_000,
        message: "gateway cache equals the control plane's keys",
      });
      for (const k of created) expect(await chatStatus(gw, k.key)).toBe(200);
      // Each revision applied exactly once, in order, with no gap: nothing repeated, nothing skipped.
      const revisions = appliedDeltaRevisions(file);
      expect(revisions.length).toBeGreaterThan(0);
      expect(new Set(revisions).size).toBe(revisions.length);
      for (let i = 1; i < revisions.length; i++) expect(revisions[i]).toBe(revisions[i - 1]! + 1);
    }
    await waitFor(
      async () => {
        const rows = (await cp.admin.get("/internal/gateways")).body.data as Array<{ connected: boolean; lag: number }>;
        return rows.filter((g) => g.connected && g.lag === 0).length === 2;
      },
      { timeoutMs: 15_000, message: "both gateways connected with lag 0" },
    );
  });
});

describe.runIf(Boolean(process.env.DATABASE_URL))(
  "two control-plane replicas on one Postgres (needs DATABASE_URL)",
  () => {
    const db = testDatabase("replicas")!;
    let tmp: TempDir;
    const replicas: ControlPlaneProcess[] = [];
    const gateways: GatewayProcess[] = [];

    beforeAll(async () => {
      tmp = await createTempDir("replicas-");
      for (const name of ["cp-1", "cp-2"]) {
        replicas.push(
          await startControlPlane({
            masterKey: MASTER_KEY,
            dataDir: join(tmp.path, name),
            databaseUrl: db.url,
            databaseSchema: db.schema,
          }),
        );
      }
      const token = (await replicas[0]!.admin.post("/internal/gateway-tokens", { name: "replicas" })).body.token;
      for (const [i, cp] of replicas.entries()) {
        gateways.push(
          await startGateway({
            controlPlaneUrl: cp.grpcUrl,
            token,
            name: `gw-${i + 1}`,
            dataDir: join(tmp.path, `gw-${i + 1}`),
          }),
        );
      }
      await Promise.all(gateways.map((g) => g.waitForReady(30_000)));
    });

    afterAll(async () => {
      await Promise.all(gateways.map((g) => g.stop()));
      await Promise.all(replicas.map((r) => r.stop()));
      await db.drop();
      await tmp?.cleanup();
    });

    it("a change written through one replica reaches gateways attached to the other", async () => {
      const [one, two] = replicas as [ControlPlaneProcess, ControlPlaneProcess];
      const user = await one.admin.post("/internal/users", { external_id: "bob@example.com" });
      const viaOne = await one.admin.post("/internal/api-keys", { name: "via-1", user_id: user.body.id });
      const viaTwo = await two.admin.post("/internal/api-keys", { name: "via-2", user_id: user.body.id });
      for (const gw of gateways) {
        for (const key of [viaOne.body.key, viaTwo.body.key]) {
          await waitFor(async () => (await chatStatus(gw, key)) === 200, { timeoutMs: 5000, intervalMs: 10 });
        }
      }
      // A receipt asked of one replica covers the gateway attached to the other.
      const del = await two.admin.request("DELETE", `/internal/api-keys/${viaOne.body.id}?wait_for_gateways=5s`);
      expect(del.body.sync.complete).toBe(true);
      expect(del.body.sync.confirmed.map((g: { name: string }) => g.name).sort()).toEqual(["gw-1", "gw-2"]);
      for (const gw of gateways) expect(await chatStatus(gw, viaOne.body.key)).toBe(401);
    });
  },
);
