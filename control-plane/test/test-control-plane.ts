import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@tollgate/shared";
import pg from "pg";
import type { ControlPlaneConfig } from "../src/config.js";
import { createControlPlane, type ControlPlane } from "../src/index.js";
import { testConfig } from "./test-config.js";

export interface TestControlPlane {
  cp: ControlPlane;
  port: number;
  grpcPort: number;
  /** Admin API origin. */
  base: string;
  /** The Postgres schema it writes to (DATABASE_URL set), else undefined (PGlite). */
  schema: string | undefined;
  /** Stops it and removes its schema (Postgres) or data dir (PGlite). */
  stop(): Promise<void>;
}

/**
 * An in-process control plane for one suite: its own schema on the Postgres of
 * DATABASE_URL when set, else PGlite in a temp dir; loopback, free ports, silent.
 */
export async function startTestControlPlane(overrides: Partial<ControlPlaneConfig> = {}): Promise<TestControlPlane> {
  const dataDir = mkdtempSync(join(tmpdir(), "tollgate-cp-"));
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const schema = databaseUrl ? `t_${Math.random().toString(36).slice(2, 10)}` : "public";
  const cp = createControlPlane(testConfig({ databaseUrl, databaseSchema: schema, dataDir, ...overrides }), {
    logger: createLogger({ name: "test", level: "silent" }),
  });
  const { port, grpcPort } = await cp.start();
  return {
    cp,
    port,
    grpcPort,
    base: `http://127.0.0.1:${port}`,
    schema: databaseUrl ? schema : undefined,
    async stop() {
      await cp.stop();
      if (databaseUrl) {
        const client = new pg.Client({ connectionString: databaseUrl });
        await client.connect();
        await client.query(`drop schema if exists ${schema} cascade`);
        await client.end();
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
