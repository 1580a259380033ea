import type { Kysely } from "kysely";
import type { Database } from "./types";
import { migrateToLatest } from "./migrate";
import { seedDefaultOverrides, syncActionTypeConstraint, type ConstraintSyncResult } from "../app/models/action-type-sync.server";

export interface PrepareResult {
  migrations: string[];
  constraint: ConstraintSyncResult;
  seededOverrides: string[];
}

/**
 * What `cli migrate` and every start do: frozen migrations first, then the parts derived
 * from the action-type registry (CHECK constraint, default overrides).
 */
export async function prepareDatabase(db: Kysely<Database>): Promise<PrepareResult> {
  const migrations = await migrateToLatest(db);
  const constraint = await syncActionTypeConstraint(db);
  const seededOverrides = await seedDefaultOverrides(db);
  return { migrations, constraint, seededOverrides };
}
