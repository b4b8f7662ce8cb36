import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "@tollgate/testkit";
import { startTestControlPlane, type TestControlPlane } from "../../../test/test-control-plane.js";
import { TEST_MASTER_KEY } from "../../../test/test-config.js";

// Two writers at once need two connections: Postgres only (PGlite serves one at a time).
describe.runIf(Boolean(process.env.DATABASE_URL))("a key write racing a change of its owner's limits", () => {
  let test: TestControlPlane;
  let client: pg.Client;
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

  beforeAll(async () => {
    test = await startTestControlPlane();
    client = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
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
      await eventually(async () =>
        (
          await client.query(
            "select 1 from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database() and pid <> pg_backend_pid()",
          )
        ).rowCount! > 0
          ? true
          : undefined,
      );
      await client.query("commit");
      const key = await created;
      expect(key.status).toBe(201);
      expect((await syncedOwnerLimits(key.body.id))[field]).toBe(2000);
    });
  }
});
