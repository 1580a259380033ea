import { Migrator, type MigrationResultSet } from "kysely/migration";
import type { Kysely } from "kysely";
import { migrations } from "./migrations";

export function createMigrator(db: Kysely<any>): Migrator { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    // Kept in public so that rolling back tokenboard's schema never drops its own bookkeeping.
    migrationTableName: "tokenboard_migration",
    migrationLockTableName: "tokenboard_migration_lock",
  });
}

function assertOk(result: MigrationResultSet): string[] {
  if (result.error) {
    const failed = result.results?.find((r) => r.status === "Error");
    const name = failed ? ` in ${failed.migrationName}` : "";
    throw new Error(`migration failed${name}: ${result.error instanceof Error ? result.error.message : String(result.error)}`);
  }
  return (result.results ?? []).map((r) => r.migrationName);
}

export async function migrateToLatest(db: Kysely<any>): Promise<string[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return assertOk(await createMigrator(db).migrateToLatest());
}

export async function migrateDown(db: Kysely<any>): Promise<string[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return assertOk(await createMigrator(db).migrateDown());
}
