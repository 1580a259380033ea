import { sql, type Kysely } from "kysely";
import type { Database } from "./types";
import { migrateToLatest } from "./migrate";
import { seedDefaultOverrides, syncActionTypeConstraint, type ConstraintSyncResult } from "../app/models/action-type-sync.server";
import { ensureRollupsBuilt } from "../app/models/rollup.server";
import { adoptBillingOnce, type AdoptionResult } from "../app/models/billing-adoption.server";

export interface PrepareResult {
  migrations: string[];
  constraint: ConstraintSyncResult;
  seededOverrides: string[];
  /** Rows rolled up by the first build (an adopted database), or null when already built. */
  initialRollup: { rows: number; ms: number } | null;
  /** The adoption of the seed's billing history (first start only), or null when already done or skipped. */
  billingAdoption: AdoptionResult | null;
}

export interface PrepareOptions {
  /**
   * Adopt token_transactions and charge the usage already there (once per database). Off only
   * where demo data is loaded next: its loader adopts what it loaded.
   */
  adoptBilling?: boolean;
}

/**
 * What `cli migrate` and every start do: frozen migrations first, then the parts derived
 * from the action-type registry (CHECK constraint, default overrides), then the first rollup
 * build on a database that already had rows, then the adoption of the seed's billing history.
 */
export async function prepareDatabase(db: Kysely<Database>, options: PrepareOptions = {}): Promise<PrepareResult> {
  await assertServerVersion(db);
  await assertUsageIndexesValid(db);
  const migrations = await migrateToLatest(db);
  const constraint = await syncActionTypeConstraint(db);
  const seededOverrides = await seedDefaultOverrides(db);
  const initialRollup = await ensureRollupsBuilt(db);
  const billingAdoption = options.adoptBilling === false ? null : await adoptBillingOnce(db);
  return { migrations, constraint, seededOverrides, initialRollup, billingAdoption };
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

/**
 * The indexes tokenboard's migrations add to the app's token_usage (0002, 0013). A migration builds
 * them in its transaction, which blocks the app's writes to the table while it runs; on a large
 * table an operator builds them beforehand with CREATE INDEX CONCURRENTLY (README, "Adopting a
 * large database"), and the migrations' IF NOT EXISTS then keeps them.
 */
export const USAGE_INDEXES = ["token_usage_event_id_key", "token_usage_user_created_idx", "token_usage_type_created_idx", "token_usage_failed_type_created_idx"];

/**
 * A CREATE INDEX CONCURRENTLY that failed (duplicate event ids, a cancelled build) leaves an invalid
 * index behind, which IF NOT EXISTS would keep: a unique index that enforces nothing. Refused
 * before any migration runs, with the fix.
 */
export async function assertUsageIndexesValid(db: Kysely<Database>): Promise<void> {
  const result = await sql<{ name: string }>`
    SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = to_regclass('public.token_usage') AND NOT i.indisvalid AND c.relname = ANY(${USAGE_INDEXES}::text[])
    ORDER BY 1`.execute(db);
  const invalid = result.rows.map((row) => row.name);
  if (invalid.length) {
    throw new Error(`index ${invalid.join(", ")} on token_usage is invalid (a CREATE INDEX CONCURRENTLY that did not finish). Run DROP INDEX CONCURRENTLY public.${invalid[0]}; for each, fix the cause (for token_usage_event_id_key: rows sharing an event_id) and build it again, or let tokenboard build it. Nothing was changed.`);
  }
}
