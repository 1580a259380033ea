import type { Kysely } from "kysely";
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
  const migrations = await migrateToLatest(db);
  const constraint = await syncActionTypeConstraint(db);
  const seededOverrides = await seedDefaultOverrides(db);
  const initialRollup = await ensureRollupsBuilt(db);
  return { migrations, constraint, seededOverrides, initialRollup };
}
