import { sql, type Kysely } from "kysely";
import type { Database } from "./types";
import { migrateToLatest } from "./migrate";
import { seedDefaultOverrides, syncActionTypeConstraint, type ConstraintSyncResult } from "../app/models/action-type-sync.server";
import { ensureRollupsBuilt } from "../app/models/rollup.server";

export interface PrepareResult {
  migrations: string[];
  constraint: ConstraintSyncResult;
  seededOverrides: string[];
  /** Rows rolled up by the first build (an adopted database), or null when already built. */
  initialRollup: { rows: number; ms: number } | null;
}

/**
 * What `cli migrate` and every start do: frozen migrations first, then the parts derived
 * from the action-type registry (CHECK constraint, default overrides), then the first rollup
 * build on a database that already had rows.
 */
export async function prepareDatabase(db: Kysely<Database>): Promise<PrepareResult> {
  await assertServerVersion(db);
  const migrations = await migrateToLatest(db);
  const constraint = await syncActionTypeConstraint(db);
  const seededOverrides = await seedDefaultOverrides(db);
  const initialRollup = await ensureRollupsBuilt(db);
  return { migrations, constraint, seededOverrides, initialRollup };
}

/** The oldest PostgreSQL the migrations run on (unique indexes NULLS NOT DISTINCT). */
export const MIN_SERVER_VERSION = 150_000;

/** Refuses an older server before any migration runs, with what to do instead of a SQL error half-way. */
export async function assertServerVersion(db: Kysely<Database>, minimum = MIN_SERVER_VERSION): Promise<void> {
  const result = await sql<{ num: string; version: string }>`SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version`.execute(db);
  const row = result.rows[0];
  if (row && Number(row.num) < minimum) {
    throw new Error(`tokenboard needs PostgreSQL ${Math.floor(minimum / 10_000)} or newer; DATABASE_URL points to PostgreSQL ${row.version}. Upgrade the server, or unset DATABASE_URL to use the embedded one. Nothing was changed.`);
  }
}
