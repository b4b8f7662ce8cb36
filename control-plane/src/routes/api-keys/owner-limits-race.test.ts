import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "@tollgate/testkit";
import { startTestControlPlane, type TestControlPlane } from "../../../test/test-control-plane.js";
import { TEST_MASTER_KEY } from "../../../test/test-config.js";

// Two writers at once need two connections: Postgres only (PGlite serves one at a time).
describe.runIf(Boolean(process.env.DATABASE_URL))("a key write racing a change of its owner's limits", () => {
  let test: TestControlPlane;
  let client: pg.Client;
  /** Watches from outside the writer's transaction (inside one, pg_stat_activity stays as first read). */
  let watcher: pg.Client;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(test.base + path, {
      method,
      headers: { authorization: `Bearer ${TEST_MASTER_KEY}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  /** The owner limits the change log sent gateways with the key's latest record. */
  const syncedOwnerLimits = async (keyId: string) =>
    (
      await client.query(
        `select payload from ${test.schema}.change_log where resource_id = $1 order by revision desc limit 1`,
        [keyId],
      )
    ).rows[0].payload.owner_limits;

  /** Until a session of this control plane waits for a row lock on its users or teams (not another test file's, which may share this database). */
  const createWaitsForALock = () =>
    eventually(async () =>
      (
        await watcher.query(
          `select 1 from pg_stat_activity a
            where a.wait_event_type = 'Lock' and a.query ilike '%for share%'
              and exists (select 1 from pg_locks l join pg_class c on c.oid = l.relation
                            join pg_namespace n on n.oid = c.relnamespace
                           where l.pid = a.pid and n.nspname = $1 and c.relname in ('users', 'teams'))`,
          [test.schema],
        )
      ).rowCount! > 0
        ? true
        : undefined,
    );

  beforeAll(async () => {
    test = await startTestControlPlane();
    client = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
    watcher = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await watcher.connect();
  });
  afterAll(async () => {
    await client?.end();
    await watcher?.end();
    await test?.stop();
  });

  for (const [what, table, column, field] of [
    ["user", "users", "tpm_limit", "user_tpm_limit"],
    ["team", "teams", "tpm_limit", "team_tpm_limit"],
  ] as const) {
    it(`a create that starts while its ${what}'s limit change is uncommitted goes out with the new limit`, async () => {
      const team = await call("POST", "/internal/teams", { name: `race-${what}-${Date.now()}`, tpm_limit: 1000 });
      expect(team.status).toBe(201);
      const user = await call("POST", "/internal/users", {
        external_id: `race-${what}-${Date.now()}@example.com`,
        team_id: team.body.id,
        tpm_limit: 1000,
      });
      expect(user.status).toBe(201);
      const ownerId = what === "user" ? user.body.id : team.body.id;

      // Another writer changes the owner's limit and has not committed yet.
      await client.query("begin");
      await client.query(`update ${test.schema}.${table} set ${column} = 2000 where id = $1`, [ownerId]);
      const created = call("POST", "/internal/api-keys?wait_for_gateways=0s", { name: "racer", user_id: user.body.id });
      // The create waits for that row: it must not build the key's record from the old limit.
      await createWaitsForALock();
      await client.query("commit");
      const key = await created;
      expect(key.status).toBe(201);
      expect((await syncedOwnerLimits(key.body.id))[field]).toBe(2000);
    });
  }

  it("a create that starts while its user's move to another team is uncommitted goes out with the new team's limit", async () => {
    const stamp = Date.now();
    const from = await call("POST", "/internal/teams", { name: `move-from-${stamp}`, tpm_limit: 1000 });
    const to = await call("POST", "/internal/teams", { name: `move-to-${stamp}`, tpm_limit: 3000 });
    const user = await call("POST", "/internal/users", {
      external_id: `move-${stamp}@example.com`,
      team_id: from.body.id,
    });
    expect(user.status).toBe(201);
    await client.query("begin");
    await client.query(`update ${test.schema}.users set team_id = $1 where id = $2`, [to.body.id, user.body.id]);
    const created = call("POST", "/internal/api-keys?wait_for_gateways=0s", { name: "mover", user_id: user.body.id });
    await createWaitsForALock();
    await client.query("commit");
    const key = await created;
    expect(key.status).toBe(201);
    expect((await syncedOwnerLimits(key.body.id)).team_tpm_limit).toBe(3000);
  });
});
