import { sql, type Kysely } from "kysely";

/**
 * What the monthly report needs per user × action type × UTC day, so that its export reads
 * the rollup instead of every raw row of the month: calls below/above the expected range and
 * the first and last call. The first rollup build after this migration fills them (the flag
 * that says "built" is cleared here).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE tokenboard.user_usage_day
      ADD COLUMN below_range bigint NOT NULL DEFAULT 0,
      ADD COLUMN above_range bigint NOT NULL DEFAULT 0,
      ADD COLUMN first_at timestamptz,
      ADD COLUMN last_at timestamptz`.execute(db);
  await sql`DELETE FROM tokenboard.settings WHERE key = 'rollups_built'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE tokenboard.user_usage_day
      DROP COLUMN IF EXISTS below_range, DROP COLUMN IF EXISTS above_range,
      DROP COLUMN IF EXISTS first_at, DROP COLUMN IF EXISTS last_at`.execute(db);
}
