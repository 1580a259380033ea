import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import type { Database } from "./types";

// int8 (counts, sums of tokens) and numeric (costs) arrive as strings by default. Token sums
// stay far below 2^53, so numbers are exact; a value that is not safe is refused loudly.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 value ${value} exceeds JavaScript's safe integer range`);
  return n;
});
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value) => Number(value));
// A date is a calendar day, not an instant: keep it as YYYY-MM-DD so no zone shifts it.
pg.types.setTypeParser(pg.types.builtins.DATE, (value) => value);

/** tokenboard's own tables first, then the adopted app's. */
export const SEARCH_PATH = "tokenboard,public";

export interface DbHandle {
  db: Kysely<Database>;
  pool: pg.Pool;
}

export function createPool(connectionString: string, max = 10): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    options: `-c search_path=${SEARCH_PATH}`,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client that loses its server (database restart) must not crash the process.
  pool.on("error", () => undefined);
  // Nor may one that is checked out between two queries (a transaction, the job runner's
  // session): pg emits the server's "terminating connection" on the client itself, and an
  // 'error' event nobody listens to ends the process (found by tests/e2e/faults.spec.ts: the
  // production server died when PostgreSQL stopped under ingest). Its holder's next query fails
  // with "not queryable" (a 503, isDatabaseUnavailable), and the pool drops it on release.
  pool.on("connect", (client) => client.on("error", () => undefined));
  return pool;
}

export function createDb(connectionString: string, max = 10): DbHandle {
  const pool = createPool(connectionString, max);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, pool };
}
