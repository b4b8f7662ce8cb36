import net from "node:net";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { TEST_MASTER_KEY } from "../../test/test-config.js";
import { startTestControlPlane, type TestControlPlane } from "../../test/test-control-plane.js";
import { createDatabaseHealth, isConnectionError, watchPool } from "./database-health.js";

const auth = { authorization: `Bearer ${TEST_MASTER_KEY}` };

/** A loopback TCP relay to Postgres that the test can cut (drop every connection, refuse new ones) and restore. */
async function startRelay(target: { host: string; port: number }) {
  const sockets = new Set<net.Socket>();
  let up = true;
  const server = net.createServer((client) => {
    if (!up) return client.destroy();
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      up = false;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      up = true;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function eventually<T>(probe: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
  for (let i = 0; ; i++) {
    const value = await probe();
    if (ok(value) || i >= 200) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("database connection loss", () => {
  let cp: TestControlPlane | undefined;
  let relay: Awaited<ReturnType<typeof startRelay>> | undefined;
  afterEach(async () => {
    await cp?.stop();
    await relay?.close();
    cp = undefined;
    relay = undefined;
  });

  it("a pool whose idle or checked-out client emits 'error' does not crash the process and marks the database down", async () => {
    const health = createDatabaseHealth();
    // Nothing listens on port 1: no connection is ever made, the events are what matters.
    const pool = new pg.Pool({ connectionString: "postgres://nobody@127.0.0.1:1/none" });
    watchPool(pool, health);
    const lost = Object.assign(new Error("Connection terminated unexpectedly"), {});
    // Without a listener, emit('error') throws "Unhandled 'error' event".
    expect(() => pool.emit("error", lost, {} as pg.PoolClient)).not.toThrow();
    expect(health.available).toBe(false);
    const client = new pg.Client();
    pool.emit("connect", client);
    expect(health.available).toBe(true);
    expect(() =>
      client.emit(
        "error",
        Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" }),
      ),
    ).not.toThrow();
    expect(health.available).toBe(false);
    expect(health.connectionErrors).toBe(2);
    expect(isConnectionError(Object.assign(new Error("syntax"), { code: "42601" }))).toBe(false);
    await pool.end();
  });

  it("rides through terminated backends and a database outage: 503 JSON meanwhile, /readyz and metrics say so, recovers by itself", async () => {
    const databaseUrl = process.env.DATABASE_URL;
    if (!databaseUrl) {
      // PGlite has no connections to lose; the listener test above covers the pool path.
      cp = await startTestControlPlane();
      const ready = await fetch(`${cp.base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ ready: true, database_connected: true });
      return;
    }
    const url = new URL(databaseUrl);
    relay = await startRelay({ host: url.hostname, port: Number(url.port || 5432) });
    const relayed = new URL(databaseUrl);
    relayed.hostname = "127.0.0.1";
    relayed.port = String(relay.port);
    const previous = process.env.DATABASE_URL;
    process.env.DATABASE_URL = relayed.toString();
    try {
      cp = await startTestControlPlane();
    } finally {
      process.env.DATABASE_URL = previous;
    }
    const base = cp.base;
    const schema = cp.cp.context!.config.databaseSchema;
    const list = () => fetch(`${base}/internal/teams`, { headers: auth });
    // Several parallel calls leave several idle connections in the pool.
    await Promise.all([list(), list(), list(), list()]);

    // 1. Postgres ends this service's backends (failover, idle_session_timeout, an operator).
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    const killed = await admin.query(
      "select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1",
      [`tollgate-cp:${schema}`],
    );
    await admin.end();
    expect(killed.rowCount).toBeGreaterThan(0);
    const after = await eventually(list, (r) => r.status === 200);
    expect(after.status).toBe(200);

    // 2. The database goes away: answers are 503 JSON, /readyz and /metrics say so.
    relay.cut();
    const down = await eventually(list, (r) => r.status === 503);
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ error: { code: "database_unavailable" } });
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({ ready: false, database_connected: false });
    expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/^tollgate_cp_database_up 0$/m);

    // 3. It comes back: the service recovers without a restart.
    relay.restore();
    const back = await eventually(list, (r) => r.status === 200);
    expect(back.status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^tollgate_cp_database_up 1$/m);
    expect(metrics).toMatch(/^tollgate_cp_database_connection_errors_total [1-9]\d*$/m);
  }, 60_000);
});
