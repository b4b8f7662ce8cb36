import type { Logger } from "@tollgate/shared";
import type pg from "pg";
import { Gauge, Counter, type Registry } from "prom-client";

/**
 * Whether the database answers, as seen from the errors of real queries and of the pool.
 * Postgres restarts, failovers, pooler restarts, `idle_session_timeout` and
 * `pg_terminate_backend` all end pooled connections; `pg` then emits 'error' on the pool
 * (idle client) or on the client (checked out between statements). Without a listener
 * Node treats that as an unhandled 'error' event and exits, so both get one here: the
 * broken client is discarded, the next query opens a new connection, and requests that
 * meet the outage answer 503 until a query succeeds again.
 */
export interface DatabaseHealth {
  readonly available: boolean;
  /** Connection-level errors seen since start. */
  readonly connectionErrors: number;
  /** Seconds since the database last answered, or 0 while it answers. */
  readonly unavailableSince: number | undefined;
  markFailure(err: unknown): void;
  markSuccess(): void;
}

/** SQLSTATE classes and Node errors that mean "the connection or server is gone", not "bad query". */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e || typeof e !== "object") return false;
  const code = typeof e.code === "string" ? e.code : "";
  // 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown, cannot connect now.
  if (code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03") return true;
  if (["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH"].includes(code))
    return true;
  const message = typeof e.message === "string" ? e.message : "";
  return /Connection terminated|connection timeout|Client has encountered a connection error|Connection ended/i.test(
    message,
  );
}

export function createDatabaseHealth(logger?: Logger): DatabaseHealth {
  let available = true;
  let connectionErrors = 0;
  let since: number | undefined;
  return {
    get available() {
      return available;
    },
    get connectionErrors() {
      return connectionErrors;
    },
    get unavailableSince() {
      return since === undefined ? undefined : (Date.now() - since) / 1000;
    },
    markFailure(err) {
      if (!isConnectionError(err)) return;
      connectionErrors++;
      if (available) {
        available = false;
        since = Date.now();
        // The message and code only: pg errors carry no credentials, but keep the log line small.
        const e = err as { code?: unknown; message?: unknown };
        logger?.error({ code: e.code, message: e.message }, "database connection lost; answering 503 until it is back");
      }
    },
    markSuccess() {
      if (available) return;
      available = true;
      logger?.info({ downSeconds: since === undefined ? 0 : (Date.now() - since) / 1000 }, "database reachable again");
      since = undefined;
    },
  };
}

/** Listeners that keep a dropped pooled connection from crashing the process. */
export function watchPool(pool: pg.Pool, health: DatabaseHealth): void {
  pool.on("error", (err) => health.markFailure(err));
  pool.on("connect", (client) => {
    client.on("error", (err) => health.markFailure(err));
    health.markSuccess();
  });
}

export function registerDatabaseMetrics(registry: Registry, health: DatabaseHealth): void {
  new Gauge({
    name: "tollgate_cp_database_up",
    help: "1 while the database answers, 0 while its connections fail (requests get 503)",
    registers: [registry],
    collect() {
      this.set(health.available ? 1 : 0);
    },
  });
  let reported = 0;
  new Counter({
    name: "tollgate_cp_database_connection_errors_total",
    help: "Database connections lost or refused (Postgres restart, failover, terminated backend)",
    registers: [registry],
    collect() {
      this.inc(health.connectionErrors - reported);
      reported = health.connectionErrors;
    },
  });
}
